"""Database layer: Tortoise models, migrations and connection set-up."""
