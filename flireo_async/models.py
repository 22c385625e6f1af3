"""Every model of the Flireo API (attrs classes generated from the spec), and nothing else.

``from flireo_async.models import Agent, LLMConfig, SayCommand``
"""

from ._generated.models import *  # noqa: F403
from ._generated.models import __all__ as __all__
