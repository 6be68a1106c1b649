from django.conf import settings
from django.db import models
from django.utils import timezone


class Blob(models.Model):
    """Content stored once under its SHA-256, however many trees use it.

    A row exists only once the storage holds bytes that were checked to have this digest and
    size, so a tree that names a blob row never points at missing or wrong bytes.
    """

    digest = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.digest[:12]}… ({self.size} bytes)"


class Tree(models.Model):
    """An immutable set of files: code snapshots, dataset versions and job outputs alike.

    Its digest is the SHA-256 of its canonical manifest (``blobs.trees.canonical_manifest``),
    so equal contents make one tree.
    """

    digest = models.CharField(max_length=64, unique=True)
    file_count = models.PositiveIntegerField()
    total_size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"tree {self.digest[:12]}… ({self.file_count} files)"


class TreeEntry(models.Model):
    tree = models.ForeignKey(Tree, on_delete=models.CASCADE, related_name="entries")
    path = models.TextField()
    # PROTECT: a blob that any tree still names can never be deleted, not even by mistake.
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="entries")
    size = models.BigIntegerField()
    mode = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tree", "path"], name="blobs_treeentry_path_unique"),
        ]

    def __str__(self) -> str:
        return self.path


class BlobClaim(models.Model):
    """A user has shown they hold a blob's bytes, by uploading them.

    A digest alone must not grant access to content: whoever learnt the SHA-256 of someone
    else's private file could otherwise name it in a tree of their own and download it. So a
    blob counts as present, for a user, only once they have uploaded it themselves (into their
    own staging area, which the server checks and then moves into the shared store), and trees
    may name only blobs their author has claimed. Storage still keeps one copy per digest.
    """

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="claims")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blob_claims"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blob", "user"], name="blobs_claim_unique"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} holds {self.blob_id[:12]}…"


class BlobUpload(models.Model):
    """A multipart upload in flight: into the store itself (``direct``), or into the user's
    staging area (see ``blobs.uploads``).

    Kept here so that an interrupted client resumes with nothing but its files: the server
    finds the upload and asks the storage which parts are already there.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blob_uploads"
    )
    digest = models.CharField(max_length=64)
    size = models.BigIntegerField()
    upload_id = models.CharField(max_length=1024)
    part_size = models.BigIntegerField()
    direct = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "digest"], name="blobs_upload_unique"),
        ]

    def __str__(self) -> str:
        return f"upload of {self.digest[:12]}… by user {self.user_id}"
