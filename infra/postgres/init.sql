-- One database per service on the shared Postgres.
CREATE DATABASE dagster;
CREATE DATABASE mlflow;
CREATE DATABASE lakefs;
CREATE DATABASE human_eval;
