using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The rule the per-step recording tests apply: what counts as inside a plan, and what the recording adapter sees.</summary>
public sealed class PlanCoverageTests : IDisposable
{
    private readonly TempDirectory _dir = new("plan-coverage");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_change_no_item_names_is_outside_and_each_items_own_calls_are_inside()
    {
        PlannedChange[] plan =
        [
            PlannedChange.WriteFile("/ws/.packet/ssh.json"),
            new(ChangeKind.CopyTree, "/ws/home/.bashrc", "the image's .bashrc"),
            new(ChangeKind.Move, "/root", "/root.packet-image"),
            new(ChangeKind.RemoveTree, "/root"),
            PlannedChange.Run("/usr/bin/ssh-keygen", "the host key"),
            new(ChangeKind.StopProcess, "sshd", "pid 42, its listener alone"),
        ];
        RecordedChange[] inside =
        [
            new("open for writing", "/ws/.packet/.ssh.json.packet-tmp-7"),
            new("rename", "/ws/.packet/.ssh.json.packet-tmp-7", "/ws/.packet/ssh.json"),
            new("mkdir", "/ws/home/..bashrc.packet-tmp"),
            new("write", "/ws/home/..bashrc.packet-tmp/probe/file"),
            new("rename", "/root", "/root.packet-image"),
            new("unlink", "/root/.cache/x"),
            new("run", "/usr/bin/ssh-keygen"),
            new("kill", "pid 42"),
        ];
        RecordedChange[] outside =
        [
            new("write", "/ws/.packet/ssh.json.bak"),
            new("rename", "/ws/.packet/.ssh.json.packet-tmp-7", "/ws/.packet/other.json"),
            new("unlink", "/root2/x"),
            new("chmod", "/ws/home/.bashrc2"),
            new("run", "/usr/sbin/sshd"),
            new("kill", "pid 421"),
        ];

        Assert.Empty(PlanCoverage.Uncovered(plan, inside));
        Assert.Equal(outside, PlanCoverage.Uncovered(plan, [.. inside, .. outside]));
    }

    [Fact]
    public void The_recording_adapter_records_what_succeeded_by_absolute_path_and_not_reads_or_failures()
    {
        var log = new ChangeLog();
        var posix = new RecordingPosix(log);
        string dir = _dir.Create("d");
        int fd = posix.OpenAt(-100, dir, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC, 0);
        try
        {
            Assert.Equal(0, posix.MkdirAt(fd, "made", FilePermissions.S_IRWXU));
            Assert.True(posix.MkdirAt(fd, "made", FilePermissions.S_IRWXU) < 0);
            Assert.Equal(0, posix.LStatAt(fd, "made", out _));
            Assert.Equal(0, posix.RenameAt(fd, "made", fd, "moved", noReplace: true));
            Assert.Equal(0, posix.UnlinkAt(fd, "moved", isDirectory: true));
        }
        finally
        {
            posix.Close(fd);
        }

        Assert.Equal(
            [new RecordedChange("mkdir", Path.Join(dir, "made")), new RecordedChange("rename", Path.Join(dir, "made"), Path.Join(dir, "moved")), new RecordedChange("rmdir", Path.Join(dir, "moved"))],
            log.Take());
    }
}
