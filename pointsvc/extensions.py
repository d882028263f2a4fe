"""Extension singletons, bound to the app in create_app()."""

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# A naming convention lets Alembic create and drop named constraints on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def client_address() -> str:
    """The caller's address (ProxyFix, when configured, has already rewritten remote_addr)."""
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=client_address, default_limits=[])

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
from sqlalchemy import BigInteger, Integer  # noqa: E402

BigId = BigInteger().with_variant(Integer(), "sqlite")
