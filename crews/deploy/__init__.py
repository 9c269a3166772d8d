"""Deployment: the Helm chart's values from crew files and the scaling policy shared with the local stack."""
