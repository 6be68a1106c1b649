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
