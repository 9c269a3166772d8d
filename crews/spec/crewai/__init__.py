"""CrewAI projects read as they are (``agents.yaml`` + ``tasks.yaml``, ``crew.py`` read with ``ast``)."""
