"""The persistence layer: one atomic write primitive (``atomic``) and every custom dataset.

``published`` (tables replaced atomically for readers), ``extracts`` (landing files read strictly),
``registry`` (the model registry), ``model_store`` (Kedro datasets over the registry and the
training snapshots), ``predictions`` (prediction tables), ``s3`` (S3 settings for every client),
``alert_delivery`` (monitoring's alerts sent on save, with the channels' credentials).
"""
