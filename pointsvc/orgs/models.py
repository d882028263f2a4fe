"""Organisation nodes, stored with a materialised path so subtree checks are one prefix test."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..common import utcnow
from ..extensions import BigId, db

LEVELS = ("district", "street", "community", "grid")
PARENT_LEVEL = {"district": None, "street": "district", "community": "street", "grid": "community"}


class OrgNode(db.Model):
    __tablename__ = "org_nodes"
    __table_args__ = (
        UniqueConstraint("parent_id", "name_zh"),
        CheckConstraint("level IN ('district', 'street', 'community', 'grid')", name="level"),
        Index("ix_org_nodes_path", "path"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_nodes.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # "/1/4/9/": ancestors then self; a node covers every node whose path starts with its own.
    path: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.strip("/").split("/") if part]
