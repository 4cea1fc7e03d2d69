# syntax=docker/dockerfile:1.7
# The ECS image of readmit-kedro, for both task families (deploy/ecs/): every Airflow task of the
# prod DAGs overrides the command with
#   kedro run --env prod --pipeline <pipeline> --nodes <node> --params run_date=<date>,...
# which runs as the non-root user `kedro` in /app: the project installed from `kedro package`
# (wheel + conf tarball), Java 17 for Spark, and the two jars Spark's S3A filesystem needs.
#
# Build (Docker BuildKit; the jar checksums are required, see the `jars` stage):
#   docker build -t readmit-kedro \
#     --build-arg HADOOP_AWS_SHA256=<sha256 of hadoop-aws-3.5.0.jar> \
#     --build-arg AWS_SDK_BUNDLE_VERSION=<aws-java-sdk-v2.version of hadoop-project-3.5.0.pom> \
#     --build-arg AWS_SDK_BUNDLE_SHA256=<sha256 of bundle-<that version>.jar> .
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
# pyspark/jars): hadoop-aws of that version and the AWS SDK v2 bundle it was built against. No
# checksum is written here because none could be verified from this repository's build machine:
# pass both sha256 (from Maven Central's .sha256/.sha1 files, or a trusted mirror) as build args.
# The SDK version is checked against hadoop-project-<HADOOP_VERSION>.pom before downloading.
FROM debian:${DEBIAN_RELEASE}-slim AS jars
ARG HADOOP_VERSION=3.5.0
ARG HADOOP_AWS_SHA256
ARG AWS_SDK_BUNDLE_VERSION
ARG AWS_SDK_BUNDLE_SHA256
ARG MAVEN_REPOSITORY=https://repo1.maven.org/maven2
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /jars
RUN set -eu; \
    : "${HADOOP_AWS_SHA256:?--build-arg HADOOP_AWS_SHA256 is required}"; \
    : "${AWS_SDK_BUNDLE_VERSION:?--build-arg AWS_SDK_BUNDLE_VERSION is required}"; \
    : "${AWS_SDK_BUNDLE_SHA256:?--build-arg AWS_SDK_BUNDLE_SHA256 is required}"; \
    hadoop="${MAVEN_REPOSITORY}/org/apache/hadoop"; \
    curl -fsSL -o /tmp/hadoop-project.pom \
        "${hadoop}/hadoop-project/${HADOOP_VERSION}/hadoop-project-${HADOOP_VERSION}.pom"; \
    if ! grep -q "<aws-java-sdk-v2.version>${AWS_SDK_BUNDLE_VERSION}<" /tmp/hadoop-project.pom; then \
        echo "hadoop-aws ${HADOOP_VERSION} is built against another AWS SDK:" >&2; \
        grep "aws-java-sdk-v2.version" /tmp/hadoop-project.pom >&2; exit 1; \
    fi; \
    curl -fsSLO "${hadoop}/hadoop-aws/${HADOOP_VERSION}/hadoop-aws-${HADOOP_VERSION}.jar"; \
    curl -fsSLO "${MAVEN_REPOSITORY}/software/amazon/awssdk/bundle/${AWS_SDK_BUNDLE_VERSION}/bundle-${AWS_SDK_BUNDLE_VERSION}.jar"; \
    printf '%s  %s\n' \
        "${HADOOP_AWS_SHA256}" "hadoop-aws-${HADOOP_VERSION}.jar" \
        "${AWS_SDK_BUNDLE_SHA256}" "bundle-${AWS_SDK_BUNDLE_VERSION}.jar" | sha256sum -c -

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
