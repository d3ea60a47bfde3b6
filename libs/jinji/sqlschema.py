"""Column helpers shared by the services' table definitions."""

from typing import Any

from sqlalchemy import Column, DateTime, func


def timestamp(name: str, *, nullable: bool = True, now: bool = False) -> "Column[Any]":
    """A timezone-aware timestamp column; ``now`` gives it the database's now() default."""
    return Column(
        name, DateTime(timezone=True), nullable=nullable, server_default=func.now() if now else None
    )
