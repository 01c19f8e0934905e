"""Alembic environment: the app's tables, batch mode on SQLite, foreign keys off while migrating."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from vigil_ir.tables import metadata

config = context.config
target_metadata = metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, compare_type=True,
                      render_as_batch=config.get_main_option("sqlalchemy.url", "").startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # With foreign keys on, a batch rebuild of a parent table cascades deletes to children.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            # Concurrent `vigil migrate` runs (several releases at once) take turns.
            connection.exec_driver_sql("SELECT pg_advisory_lock(7419001)")
        # End the implicit transaction the statement above began, so Alembic's own commits.
        connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata,
                          compare_type=True, render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()
        if not sqlite:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(7419001)")
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
