# syntax=docker/dockerfile:1.7
# The ECS image of readmit-kedro, for both task families (deploy/ecs/): every Airflow task of the
# prod DAGs overrides the command with
#   kedro run --env prod --pipelines <pipeline> --nodes <node> --params run_date=<date>,...
# which runs as the non-root user `kedro` in /app: the project installed from `kedro package`
# (wheel + conf tarball), Java 17 for Spark, and the two jars Spark's S3A filesystem needs.
#
# Build (Docker BuildKit):  docker build -t readmit-kedro .
# The jar pins (versions and Maven Central's SHA-1s) are ARGs: override all of a jar's ARGs together.
# The pins below must match pyproject.toml and requirements.lock; tests/airflow/test_image.py
# checks them and replays the package and install stages in virtualenvs.

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

# --- 1. `kedro package`: dist/readmit_kedro-<version>-py3-none-any.whl + conf-readmit_kedro.tar.gz
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS package
ARG UV_VERSION=0.13.9
ARG KEDRO_VERSION=1.7.0
ARG BUILD_VERSION=1.6.1
ENV KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY requirements.lock ./
RUN uv pip install --system --no-cache -c requirements.lock \
        "kedro==${KEDRO_VERSION}" "build==${BUILD_VERSION}"
COPY pyproject.toml README.md .telemetry ./
COPY src/ src/
COPY conf/ conf/
RUN kedro package && ls -l dist/

# --- 2. The S3A jars, for pyspark 4.3.0's bundled Hadoop (hadoop-client-api-3.5.0.jar in
# pyspark/jars): hadoop-aws of that version, the AWS SDK v2 bundle it was built against (the
# <aws-java-sdk-v2.version> of hadoop-project-3.5.0.pom, checked at build time before any jar is
# downloaded), and analyticsaccelerator-s3, a compile-scope dependency of hadoop-aws 3.5.0.
# The SHA-1s are Maven Central's published <jar>.sha1 values. This repository's build machine
# cannot reach Maven, so they were not recomputed here: two independent public projects quote the
# same three values. A mismatch fails the build (sha1sum -c).
FROM debian:${DEBIAN_RELEASE}-slim AS jars
ARG HADOOP_VERSION=3.5.0
ARG HADOOP_AWS_SHA1=9e594525d264c0db653c7f68da98b245f7d61ea5
ARG AWS_SDK_BUNDLE_VERSION=2.35.4
ARG AWS_SDK_BUNDLE_SHA1=7252265e3970b214708e68a8b74a8fa8c875af1e
ARG ANALYTICS_ACCELERATOR_VERSION=1.3.1
ARG ANALYTICS_ACCELERATOR_SHA1=6c9bd0f6c440c9a78e82d272f5f0252d942419f6
ARG MAVEN_REPOSITORY=https://repo1.maven.org/maven2
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /jars
RUN set -eu; \
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
        "${HADOOP_AWS_SHA1}" "hadoop-aws-${HADOOP_VERSION}.jar" \
        "${AWS_SDK_BUNDLE_SHA1}" "bundle-${AWS_SDK_BUNDLE_VERSION}.jar" \
        "${ANALYTICS_ACCELERATOR_SHA1}" "analyticsaccelerator-s3-${ANALYTICS_ACCELERATOR_VERSION}.jar" \
        | sha1sum -c -

# --- 3. The image ECS runs.
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
ARG UV_VERSION=0.13.9
ENV KEDRO_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    PYSPARK_PYTHON=/usr/local/bin/python
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini procps \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" "${JAVA_HOME}"
# The wheel's dependencies at the versions of requirements.lock (its runtime subset only).
COPY requirements.lock /tmp/requirements.lock
COPY --from=package /src/dist/ /tmp/dist/
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv pip install --system --no-cache -c /tmp/requirements.lock /tmp/dist/*.whl \
    && pip uninstall -y -q uv \
    && rm -f /tmp/requirements.lock /tmp/dist/*.whl
COPY --from=jars /jars/ /tmp/jars/
RUN mv /tmp/jars/*.jar "$(python -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "jars")')/" \
    && rm -rf /tmp/jars
# The Kedro project folder: [tool.kedro] metadata, the packaged conf, an empty src/ (the package
# is installed), data/ for anything a prod run keeps locally.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin kedro
WORKDIR /app
COPY pyproject.toml .telemetry ./
RUN tar -xzf /tmp/dist/conf-readmit_kedro.tar.gz -C /app \
    && rm -rf /tmp/dist \
    && mkdir -p src data conf/local \
    && chown -R kedro:kedro /app
USER kedro
ENTRYPOINT ["tini", "--"]
CMD ["kedro", "info"]
