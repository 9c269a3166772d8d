"""Engines run one step for a role: ``native`` (our tool-calling loop) today; crewai, google-adk and remote
A2A agents plug in behind the same ``roles.engines.base.Engine`` contract, imported only when used."""
