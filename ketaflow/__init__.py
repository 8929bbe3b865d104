"""ketaflow: open-source software that runs a ketamine-therapy clinic end to end."""
