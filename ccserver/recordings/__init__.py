"""Call recordings: switched on per queue / line by ccserver (``CC_RECORD`` in the routing answer), made by the
shipped dialplan (MixMonitor), the file name kept on the call, played to supervisors through an authorised,
range-capable download, removed after ``recordings.retention_days`` by a once-per-cluster job.

- :mod:`ccserver.recordings.policy` — pure: whether a call is recorded, its file name, the dialplan variables.
- :mod:`ccserver.recordings.files` — the folder: safe resolution of a stored name, HTTP ranges (pure parser).
- :mod:`ccserver.recordings.cleanup` — the retention job (under a cluster lease, injected clock).
"""

from ccserver.recordings.files import RangeNotSatisfiable, RecordingFiles, parse_range
from ccserver.recordings.policy import RecordingPolicy

__all__ = ["RangeNotSatisfiable", "RecordingFiles", "RecordingPolicy", "parse_range"]
