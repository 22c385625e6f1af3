"""Every model of the Flireo API (attrs classes generated from the spec).

``from flireo_async.models import Agent, LLMConfig, SayCommand``
"""

from ._generated.models import *  # noqa: F403
