"""The web view: the jobs page, a job's live page (a lane per role, outputs, costs, approvals), the crews page.

Plain HTML and JavaScript served by the API, no build step. The pages hold no
data: their scripts read the JSON API with ``fetch``, sending the API key the
user entered once (kept in ``sessionStorage``) as ``Authorization: Bearer``,
and follow a job's ``/jobs/{id}/events`` stream the same way.
"""
