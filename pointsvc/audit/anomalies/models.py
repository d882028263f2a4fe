"""Refused geofence check-ins, kept for the anomaly report.

A check-in refused as `outside_geofence` leaves no other trace (accepted scans live in
event_scans). Only the distance from the event's centre is kept, never the coordinates: a
person's location is personal data. Rows are ordinary (no append-only trigger) so a
resident's erasure can delete theirs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ...extensions import BigId, db


class GeofenceRefusal(db.Model):
    __tablename__ = "anomaly_geofence_refusals"
    __table_args__ = (
        # One row per resident, event, direction and 30-s code step: retries of the same
        # scan (or a client hammering the endpoint) cannot grow the table without bound.
        UniqueConstraint("event_id", "resident_id", "direction", "step",
                         name="uq_anomaly_geofence_refusals_scan"),
        Index("ix_anomaly_geofence_refusals_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    # Indexed for erasure (delete a resident's rows) and the report's evidence.
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    step: Mapped[int | None] = mapped_column(BigInteger)
    # Metres from the event's centre; NULL when the phone sent no location at all.
    distance_m: Mapped[int | None] = mapped_column(Integer)
    # The geofence radius when the scan was refused (the event may be edited later).
    radius_m: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
