"""What floyd-cli's way of uploading data needs beyond Ferry's own rows: a dataset version on
its way in (``floyd data upload``), received as one tar.gz over tus, then unpacked."""

from django.db import models
from django.utils import timezone

from accounts.models import User
from datasets.models import Dataset, DatasetVersion


class UploadState(models.TextChoices):
    CREATED = "created"  # the module exists; no tus upload yet
    UPLOADING = "uploading"  # tus knows the length; bytes are arriving
    UNPACKING = "unpacking"  # every byte is in; a task is making the version
    VALID = "valid"  # committed: ``version`` is set (floyd-cli waits for this very word)
    FAILED = "failed"  # ``error`` says why; no version was made


# Only these take bytes; the others are past it.
RECEIVING = (UploadState.CREATED, UploadState.UPLOADING)


class DataUpload(models.Model):
    """A tarball that becomes the next version of ``dataset`` once it has arrived whole.

    Its bytes are kept as chunks (one per tus PATCH) in the blob storage, in an area of its own
    (``compat.floyd.data_uploads.chunk_area``), so that any web process can take the next
    PATCH and any worker can unpack them.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="floyd_uploads")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="floyd_uploads")
    message = models.TextField(blank=True)
    state = models.CharField(
        max_length=16, choices=UploadState.choices, default=UploadState.CREATED
    )
    error = models.TextField(blank=True)
    # The number the version would get if nothing else were committed first: floyd-cli shows
    # the name it is given at the start, before any version exists.
    number_hint = models.PositiveIntegerField()
    # tus: Upload-Length, known once the upload is created; Upload-Offset, what has arrived.
    length = models.BigIntegerField(null=True, blank=True)
    received = models.BigIntegerField(default=0)
    # The secret of ``upload_v2_credentials`` (HTTP Basic to the tus endpoint), hashed.
    token_hash = models.CharField(max_length=64, blank=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    # CASCADE: once committed, the upload is its version; deleting one deletes both.
    version = models.OneToOneField(
        DatasetVersion,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="floyd_upload",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"upload-{self.id} of {self.dataset.full_name} ({self.state})"

    @property
    def is_receiving(self) -> bool:
        return self.state in RECEIVING


class UploadChunk(models.Model):
    """Bytes ``offset`` to ``offset + size`` of an upload, stored under their SHA-256."""

    upload = models.ForeignKey(DataUpload, on_delete=models.CASCADE, related_name="chunks")
    offset = models.BigIntegerField()
    size = models.BigIntegerField()
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "offset"], name="floyd_chunk_offset_unique")
        ]
        ordering = ["upload", "offset"]

    def __str__(self) -> str:
        return f"upload-{self.upload_id} @{self.offset}+{self.size}"
