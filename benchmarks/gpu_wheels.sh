#!/usr/bin/env bash
# Wheels the lent GPU machine lacks, for benchmarks that go through the trainer's MLflow ledger and
# PyAV (benchmarks/scaling_sweep_gpu.py); the image has torch, numpy, pandas, pyarrow, scikit-image
# and more, but no registry. Run here (it has PyPI); carry the folder and install it there with
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site DIR/*.whl
# Versions are those of requirements/lock.txt, except importlib_metadata (10.x needs
# `lazy_importer`, which the image lacks). About 57 MB, under the device's 64 MiB carry limit.
set -euo pipefail
dir="${1:-.whl_sweep}"
mkdir -p "$dir"
get() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$dir" "$@"
}
get mlflow-skinny==3.17.2 mlflow-tracing==3.17.2 SQLAlchemy==2.1.9 greenlet==3.5.6 alembic==1.20.1 \
  Mako==1.4.3 cachetools==7.3.3 databricks-sdk==0.162.0 google-auth==2.63.0 pyasn1==0.6.5 \
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2 \
  opentelemetry-proto==1.45.2 sqlparse==0.6.1 fastapi==0.165.0 starlette==1.10.0 \
  python-multipart==0.0.34 pydot==4.0.1 av==18.1.0 pytz==2026.6 wcwidth==0.9.4 python-dotenv==1.2.4 \
  uvicorn==0.54.0 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 importlib_metadata==8.7.0 \
  zipp==4.1.2 pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5
du -sh "$dir"
