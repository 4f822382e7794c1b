"""Built-in judge prompt templates (Jinja), shipped as package data of critic."""
