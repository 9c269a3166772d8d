"""roles: the role worker runtime — engines (native, crewai, google-adk, remote A2A), tools and approvals."""
