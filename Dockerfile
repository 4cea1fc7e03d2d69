# syntax=docker/dockerfile:1.7
# The ECS image of readmit-kedro, for both task families (deploy/ecs/): every Airflow task of the
# prod DAGs overrides the command with
#   kedro run --env prod --pipelines <pipeline> --nodes <node> --params run_date=<date>,...
# which runs as the non-root user `kedro` in /app: the project installed from `kedro package`
# (wheel + conf tarball), Java 17 for Spark, and the two jars Spark's S3A filesystem needs.
#
# Build (Docker BuildKit):  docker build -t readmit-kedro .
# Supply chain (deploy/SECURITY.md, "Supply chain"):
# - Python packages come only from the two hashed locks of deploy/docker/ (`make image-locks`, at
#   the versions of requirements.lock), installed with `pip --require-hashes --no-deps`, then
#   `pip check`; the project's own wheel is built in stage 1 from this source.
# - Base images: PYTHON_IMAGE / DEBIAN_IMAGE are meant to be `name:tag@sha256:<digest>`.
#   `make pin-images` writes the digests (needs a registry client); `make check-pins` fails while
#   any is missing. The build machine of this repository has no registry access, so they are
#   tag-only today: resolve them before a release build.
# - Jars: SHA-256 checks (sha256sum -c). `make pin-jars` writes the SHA-256 ARGs after checking
#   each download against Maven Central's published SHA-1; until then the jars stage refuses to
#   build.
# tests/airflow/test_image.py checks these pins against the project and replays the package and
# install stages in virtualenvs; tests/test_image_pins.py checks the pinning script.

# The Python the locks are compiled for (--python-version); PYTHON_IMAGE must run it.
ARG PYTHON_VERSION=3.11
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- 1. `kedro package`: dist/readmit_kedro-<version>-py3-none-any.whl + conf-readmit_kedro.tar.gz
FROM ${PYTHON_IMAGE} AS package
ENV KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# kedro and build only (deploy/docker/requirements-package.in), every file hash-checked.
COPY deploy/docker/requirements-package.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements-package.lock \
    && pip check
COPY pyproject.toml README.md .telemetry ./
COPY src/ src/
COPY conf/ conf/
RUN kedro package && ls -l dist/

# --- 2. The S3A jars, for pyspark 4.3.0's bundled Hadoop (hadoop-client-api-3.5.0.jar in
# pyspark/jars): hadoop-aws of that version, the AWS SDK v2 bundle it was built against (the
# <aws-java-sdk-v2.version> of hadoop-project-3.5.0.pom, checked at build time before any jar is
# downloaded), and analyticsaccelerator-s3, a compile-scope dependency of hadoop-aws 3.5.0.
# Each jar is checked against a SHA-256 pinned here (sha256sum -c); a mismatch or a missing pin
# fails the build. The pins are written by `make pin-jars` (scripts/pin_image_inputs.sh), which
# downloads each jar and accepts it only if it matches Maven Central's SHA-1 recorded in that
# script. This repository's build machine cannot reach Maven, so the SHA-256 pins are still empty:
# the jars stage refuses to build until someone with Maven access runs `make pin-jars`.
FROM ${DEBIAN_IMAGE} AS jars
ARG HADOOP_VERSION=3.5.0
ARG HADOOP_AWS_SHA256=
ARG AWS_SDK_BUNDLE_VERSION=2.35.4
ARG AWS_SDK_BUNDLE_SHA256=
ARG ANALYTICS_ACCELERATOR_VERSION=1.3.1
ARG ANALYTICS_ACCELERATOR_SHA256=
ARG MAVEN_REPOSITORY=https://repo1.maven.org/maven2
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /jars
RUN set -eu; \
    for pin in "${HADOOP_AWS_SHA256}" "${AWS_SDK_BUNDLE_SHA256}" "${ANALYTICS_ACCELERATOR_SHA256}"; do \
        if ! printf '%s' "$pin" | grep -Eq '^[0-9a-f]{64}$'; then \
            echo "jar SHA-256 pins missing: run 'make pin-jars' (deploy/SECURITY.md)" >&2; exit 1; \
        fi; \
    done; \
    hadoop="${MAVEN_REPOSITORY}/org/apache/hadoop"; \
    curl -fsSL -o /tmp/hadoop-project.pom \
        "${hadoop}/hadoop-project/${HADOOP_VERSION}/hadoop-project-${HADOOP_VERSION}.pom"; \
    if ! grep -q "<aws-java-sdk-v2.version>${AWS_SDK_BUNDLE_VERSION}<" /tmp/hadoop-project.pom; then \
        echo "hadoop-aws ${HADOOP_VERSION} is built against another AWS SDK:" >&2; \
        grep "aws-java-sdk-v2.version" /tmp/hadoop-project.pom >&2; exit 1; \
    fi; \
    curl -fsSLO "${hadoop}/hadoop-aws/${HADOOP_VERSION}/hadoop-aws-${HADOOP_VERSION}.jar"; \
    curl -fsSLO "${MAVEN_REPOSITORY}/software/amazon/awssdk/bundle/${AWS_SDK_BUNDLE_VERSION}/bundle-${AWS_SDK_BUNDLE_VERSION}.jar"; \
    curl -fsSLO "${MAVEN_REPOSITORY}/software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/${ANALYTICS_ACCELERATOR_VERSION}/analyticsaccelerator-s3-${ANALYTICS_ACCELERATOR_VERSION}.jar"; \
    printf '%s  %s\n' \
        "${HADOOP_AWS_SHA256}" "hadoop-aws-${HADOOP_VERSION}.jar" \
        "${AWS_SDK_BUNDLE_SHA256}" "bundle-${AWS_SDK_BUNDLE_VERSION}.jar" \
        "${ANALYTICS_ACCELERATOR_SHA256}" "analyticsaccelerator-s3-${ANALYTICS_ACCELERATOR_VERSION}.jar" \
        | sha256sum -c -

# --- 3. The image ECS runs.
FROM ${PYTHON_IMAGE} AS runtime
ENV KEDRO_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    PYSPARK_PYTHON=/usr/local/bin/python \
    MPLCONFIGDIR=/tmp/matplotlib
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini procps \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" "${JAVA_HOME}"
# The wheel's dependencies: the runtime lock (the runtime subset of requirements.lock, hashed),
# then the wheel itself without dependencies; `pip check` proves the lock covers the wheel.
COPY deploy/docker/requirements-runtime.lock /tmp/requirements-runtime.lock
COPY --from=package /src/dist/ /tmp/dist/
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements-runtime.lock \
    && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
    && pip check \
    && rm -f /tmp/requirements-runtime.lock /tmp/dist/*.whl
COPY --from=jars /jars/ /tmp/jars/
RUN mv /tmp/jars/*.jar "$(python -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "jars")')/" \
    && rm -rf /tmp/jars
# The Kedro project folder: [tool.kedro] metadata, the packaged conf, an empty src/ (the package
# is installed), data/ for anything a prod run keeps locally. Everything in /app belongs to root
# and is read-only for the runtime user (conf included): only data/ is kedro's. The task
# definitions run the container with a read-only root filesystem; /tmp and /app/data are its
# two writable volumes (the VOLUME paths below, which ECS fills from the image with these owners
# and modes).
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin kedro
WORKDIR /app
COPY pyproject.toml .telemetry ./
RUN tar -xzf /tmp/dist/conf-readmit_kedro.tar.gz -C /app --no-same-owner \
    && rm -rf /tmp/dist \
    && mkdir -p src data conf/local \
    && chown -R root:root /app \
    && chmod -R u=rwX,go=rX /app \
    && chown kedro:kedro /app/data \
    && chmod 1777 /tmp
VOLUME ["/tmp", "/app/data"]
USER kedro
ENTRYPOINT ["tini", "--"]
CMD ["kedro", "info"]
