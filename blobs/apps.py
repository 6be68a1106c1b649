from django.apps import AppConfig


class BlobsConfig(AppConfig):
    name = "blobs"
    verbose_name = "Blobs and trees"
