"""A STAND-IN for Cuebot (OpenCue's Java scheduler, which cannot run here), speaking its documented gRPC
interfaces with a real RQD: the report service RQD calls (startup, status, frame completion) and the
launch call Cuebot makes on RQD (``RqdInterface.LaunchFrame`` with a ``RunFrame``), filled the way Cuebot
fills it for a chunked layer (``CUE_IFRAME``, ``CUE_CHUNK``, ``CUE_RANGE`` in the frame's environment)."""
from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from opencue_proto import report_pb2, report_pb2_grpc, rqd_pb2, rqd_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Reports(report_pb2_grpc.RqdReportInterfaceServicer):
    def __init__(self):
        self.started = queue.Queue()
        self.completed = queue.Queue()

    def ReportRqdStartup(self, request, context):
        self.started.put(request.boot_report)
        return report_pb2.RqdReportRqdStartupResponse()

    def ReportRunningFrameCompletion(self, request, context):
        self.completed.put(request.frame_complete_report)
        return report_pb2.RqdReportRunningFrameCompletionResponse()

    def ReportStatus(self, request, context):
        return report_pb2.RqdReportStatusResponse()


class CuebotStandIn:
    """Serves RQD's reports on a free port and starts a real ``rqd`` pointed at it."""

    def __init__(self, work: Path, env: dict):
        self.reports = _Reports()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        report_pb2_grpc.add_RqdReportInterfaceServicer_to_server(self.reports, self.server)
        self.cuebot_port = free_port()
        self.server.add_insecure_port(f"127.0.0.1:{self.cuebot_port}")
        self.server.start()
        self.rqd_port = free_port()
        config = work / "rqd.conf"
        config.write_text("[Override]\n"
                          f"RQD_GRPC_PORT = {self.rqd_port}\nCUEBOT_GRPC_PORT = {self.cuebot_port}\n"
                          "OVERRIDE_CUEBOT = 127.0.0.1\nOVERRIDE_NIMBY = False\nUSE_NIMBY_PYNPUT = False\n"
                          "RQD_USE_IP_AS_HOSTNAME = False\nOVERRIDE_HOSTNAME = localhost\n"
                          "RQD_USE_ALL_HOST_ENV_VARS = True\n")
        self.log = open(work / "rqd.log", "w")
        self.rqd = subprocess.Popen([str(Path(sys.executable).with_name("rqd")), "-c", str(config), "--nimbyoff"],
                                    env={**env, "RQD_CONFIG_FILE": str(config)}, stdout=self.log,
                                    stderr=subprocess.STDOUT)
        self.boot = self.reports.started.get(timeout=60)  # RQD is up once it has reported its startup
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.rqd_port}")
        self.stub = rqd_pb2_grpc.RqdInterfaceStub(self.channel)

    def launch(self, command: str, first: int, chunk: int, frame_range: str, log_dir: Path, layer: str = "render"):
        """Launch one task of a chunked layer on the RQD, as Cuebot does; returns its completion report."""
        frame = rqd_pb2.RunFrame(
            resource_id=f"res-{first}", job_id="job-1", job_name="livingportrait-test", frame_id=f"frame-{first}",
            frame_name=f"{first:04d}-{layer}", layer_id=layer, command=command, user_name=os.environ.get("USER", "root"),
            # RQD refuses uid 0; it runs the frame as itself unless RQD_BECOME_JOB_USER is set.
            uid=os.getuid() or 65534, gid=os.getgid() or 65534, log_dir=str(log_dir), show="testing", shot="default",
            num_cores=100, ignore_nimby=True,
            environment={"CUE_IFRAME": str(first), "CUE_CHUNK": str(chunk), "CUE_RANGE": frame_range,
                         "CUE_LAYER": layer})
        self.stub.LaunchFrame(rqd_pb2.RqdStaticLaunchFrameRequest(run_frame=frame), timeout=30)
        return self.reports.completed.get(timeout=300)

    def stop(self) -> None:
        self.rqd.terminate()
        try:
            self.rqd.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.rqd.kill()
            self.rqd.wait()
        self.log.close()
        self.channel.close()
        self.server.stop(grace=None)
