"""A real Orthanc PACS for the imaging tests: Debian's ``orthanc`` with the ``orthanc-dicomweb``
plugin, its storage in a temporary folder, the DICOM listener off, HTTP only from loopback.

Orthanc has no bind-address option: it listens on 0.0.0.0 even with ``RemoteAccessAllowed``
false (../shared/design/REAL-COMPONENTS.md). So it runs inside a private network namespace
(``unshare -rn``: a user namespace mapping us to root there, and a network namespace with
only its own loopback), where nothing outside can reach it. The tests, the platform under
test and the browser reach it through a relay: a TCP listener on 127.0.0.1 here forwards each
connection over a Unix socket (sockets on the file system cross network namespaces) to a
relay inside the namespace, which connects to Orthanc's port there. This file is both the
pytest fixture (``orthanc``) and, run as a script, the side inside the namespace.

In CI (``HEALTHGRID_REQUIRE_ORTHANC=1``) a missing Orthanc, plugin or namespace fails the
tests instead of skipping them; ``.ci/run`` installs ``orthanc`` and ``orthanc-dicomweb``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ORTHANC = os.environ.get("HEALTHGRID_ORTHANC", "/usr/sbin/Orthanc")
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
INNER_PORT = 8042  # Orthanc's port inside the private namespace: nothing else lives there
REQUIRED = os.environ.get("HEALTHGRID_REQUIRE_ORTHANC") == "1"


@dataclass(frozen=True)
class Orthanc:
    url: str  # Orthanc's REST root as the tests and the platform reach it

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"


def plugin_path() -> str | None:
    for folder in PLUGIN_DIRS:
        for path in sorted(Path(folder).glob("libOrthancDicomWeb.so*")) if Path(folder).is_dir() else ():
            return str(path)
    return None


def missing() -> str | None:
    """Why Orthanc cannot run here, or None."""
    if not (Path(ORTHANC).exists() and os.access(ORTHANC, os.X_OK)):
        return f"Orthanc is not installed ({ORTHANC}); apt-get install orthanc orthanc-dicomweb"
    if plugin_path() is None:
        return "the DICOMweb plugin is not installed; apt-get install orthanc-dicomweb"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"no private network namespace here (unshare -rn: {probe.stderr.decode().strip()})"
    return None


def config(folder: Path, outer_port: int) -> dict:
    return {
        "Name": "HealthGridTestPACS",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": INNER_PORT,
        "DicomServerEnabled": False,  # no DICOM listener at all: the tests speak DICOMweb
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DefaultEncoding": "Utf8",  # Chinese names in QIDO-RS answers (REAL-COMPONENTS.md)
        "HttpThreadsCount": 8,
        "ConcurrentJobs": 1,
        "Plugins": [plugin_path()],
        # Host: what Orthanc writes into its own URLs, i.e. the relay's address (with its port).
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Host": f"127.0.0.1:{outer_port}",
                     "Ssl": False},
    }


# -- relays ----------------------------------------------------------------------------------

def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _splice(a: socket.socket, b: socket.socket) -> None:
    threading.Thread(target=_pump, args=(a, b), daemon=True).start()
    threading.Thread(target=_pump, args=(b, a), daemon=True).start()


def _serve(listener: socket.socket, connect) -> None:  # noqa: ANN001
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        _splice(client, upstream)


def _unix_connect(path: str):  # noqa: ANN202
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s
    return connect


# -- inside the namespace --------------------------------------------------------------------

def _loopback_up() -> None:
    """``ip link set lo up`` without iproute2: SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))


def inside(config_path: str, sock_path: str) -> None:
    """Loopback up, Orthanc started, its port relayed to ``sock_path``; everything ends when
    stdin closes (the test process finished or died)."""
    _loopback_up()
    log = open(Path(config_path).with_suffix(".log"), "wb")  # noqa: SIM115 (lives as long as Orthanc)
    orthanc = subprocess.Popen([ORTHANC, config_path], stdout=log, stderr=subprocess.STDOUT)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(64)
    threading.Thread(target=_serve, args=(listener, lambda: socket.create_connection(("127.0.0.1", INNER_PORT))),
                     daemon=True).start()
    try:
        sys.stdin.buffer.read()
    finally:
        orthanc.terminate()
        try:
            orthanc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            orthanc.kill()


# -- the test side ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, folder: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/system", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    logs = "".join(p.read_text(errors="replace")[-2000:] for p in folder.glob("*.log"))
    raise RuntimeError(f"Orthanc did not start: {logs}")


@dataclass
class Running:
    orthanc: Orthanc
    proc: subprocess.Popen
    listener: socket.socket

    def stop(self) -> None:
        self.listener.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start(folder: Path) -> Running:
    """Orthanc in its own network namespace, reachable at 127.0.0.1:<free port> here."""
    port = _free_port()
    config_path, sock_path = folder / "orthanc.json", str(folder / "orthanc.sock")
    config_path.write_text(json.dumps(config(folder, port)))
    with open(folder / "relay.log", "wb") as relay_log:  # the child keeps its own descriptor
        proc = subprocess.Popen(["unshare", "-rn", sys.executable, __file__, "--inside", str(config_path),
                                 sock_path], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=relay_log)
    listener = socket.create_server(("127.0.0.1", port))
    deadline = time.monotonic() + 10
    while not os.path.exists(sock_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    threading.Thread(target=_serve, args=(listener, _unix_connect(sock_path)), daemon=True).start()
    running = Running(Orthanc(f"http://127.0.0.1:{port}"), proc, listener)
    try:
        _wait_ready(running.orthanc.url, proc, folder)
    except Exception:
        running.stop()
        raise
    return running


def orthanc_fixture(tmp_path_factory) -> Iterator[Orthanc]:  # noqa: ANN001
    """Body of the session fixture: skip (or fail in CI) when Orthanc cannot run here."""
    import pytest

    why = missing()
    if why is not None:
        if REQUIRED:
            pytest.fail(f"HEALTHGRID_REQUIRE_ORTHANC=1 but {why}")
        pytest.skip(why)
    running = start(tmp_path_factory.mktemp("orthanc"))
    try:
        yield running.orthanc
    finally:
        running.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["--inside"]:
    inside(sys.argv[2], sys.argv[3])


# -- a small, valid CT study -------------------------------------------------------------------

def ct_instance(*, study_uid: str, series_uid: str, sop_uid: str, number: int, patient_id: str = "MRN-0001",
                patient_name: str = "欧阳^秀英", accession: str = "CT20250715001") -> bytes:
    """One 64×64 CT slice (explicit VR little endian, UTF-8 names), written by pydicom."""
    import io

    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = patient_name, patient_id, "F", "19610308"
    ds.AccessionNumber, ds.StudyID = accession, "1"
    ds.StudyDate, ds.StudyTime, ds.TimezoneOffsetFromUTC = "20250715", "101530", "+0800"
    ds.SeriesDate, ds.SeriesTime, ds.ContentDate, ds.ContentTime = "20250715", "101530", "20250715", "101600"
    ds.Modality, ds.BodyPartExamined, ds.StudyDescription, ds.SeriesDescription = "CT", "HEAD", "头部CT平扫", "轴位"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 5.0 * number], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 80
    y, x = np.mgrid[0:64, 0:64]
    head = ((x - 32) ** 2 + (y - 32) ** 2 < 26 ** 2) * (1024 + 35 + (number % 3))  # a skull-sized disc
    bone = (((x - 32) ** 2 + (y - 32) ** 2 < 28 ** 2) & ((x - 32) ** 2 + (y - 32) ** 2 >= 26 ** 2)) * 2400
    ds.PixelData = (head + bone).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store(orthanc: Orthanc, instance: bytes) -> dict:
    """REST ``POST /instances``: Orthanc's answer (its ids of the instance and parents)."""
    request = urllib.request.Request(f"{orthanc.url}/instances", data=instance,
                                     headers={"Content-Type": "application/dicom"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())
