"""The resource classes behind ``client.agents``, ``client.calls``, ... — for annotations.

``def report(calls: CallsResource) -> None: ...``. Each class holds the methods of one tag of
the API; ``client.calls`` adds the bulk launcher (:meth:`CallsResource.create_many`) to the
generated calls methods. The ``...WithRawResponse`` classes are what ``client.with_raw_response``
holds.
"""

from ._generated.resources import (
    AgentsResource,
    AgentsResourceWithRawResponse,
    AnalysisTemplatesResource,
    AnalysisTemplatesResourceWithRawResponse,
    ByokResource,
    ByokResourceWithRawResponse,
    CallsResourceWithRawResponse,
    CampaignsResource,
    CampaignsResourceWithRawResponse,
    DomainsResource,
    DomainsResourceWithRawResponse,
    NumbersResource,
    NumbersResourceWithRawResponse,
    OrganizationResource,
    OrganizationResourceWithRawResponse,
    SipTrunksResource,
    SipTrunksResourceWithRawResponse,
    ToolTemplatesResource,
    ToolTemplatesResourceWithRawResponse,
    UsageResource,
    UsageResourceWithRawResponse,
    VoicesResource,
    VoicesResourceWithRawResponse,
)
from ._generated.resources import CallsResource as _GeneratedCallsResource
from .bulk import BulkCallsMixin

__all__ = [
    "AgentsResource",
    "AnalysisTemplatesResource",
    "ByokResource",
    "CallsResource",
    "CampaignsResource",
    "DomainsResource",
    "NumbersResource",
    "OrganizationResource",
    "SipTrunksResource",
    "ToolTemplatesResource",
    "UsageResource",
    "VoicesResource",
    "AgentsResourceWithRawResponse",
    "AnalysisTemplatesResourceWithRawResponse",
    "ByokResourceWithRawResponse",
    "CallsResourceWithRawResponse",
    "CampaignsResourceWithRawResponse",
    "DomainsResourceWithRawResponse",
    "NumbersResourceWithRawResponse",
    "OrganizationResourceWithRawResponse",
    "SipTrunksResourceWithRawResponse",
    "ToolTemplatesResourceWithRawResponse",
    "UsageResourceWithRawResponse",
    "VoicesResourceWithRawResponse",
]


class CallsResource(BulkCallsMixin, _GeneratedCallsResource):
    """Call history, outbound calls, live call control, and bulk launches (:meth:`create_many`)."""
