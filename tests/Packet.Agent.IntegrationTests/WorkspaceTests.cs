using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The workspace adapters on a real file system: no-follow handles, atomic replacement, the lock, the profile step.</summary>
public sealed class WorkspaceTests : IDisposable
{
    private readonly TempDirectory _dir = new("workspace");
    private readonly ChangeLog _changes = new();
    private readonly RecordingPosix _posix;

    public WorkspaceTests() => _posix = new RecordingPosix(_changes);

    public void Dispose() => _dir.Dispose();

    [RootFact]
    public void Replacing_a_file_keeps_the_owner_and_mode_it_is_given_and_leaves_no_temporary_file()
    {
        Require.Root();
        string directory = _dir.Create("d");
        using var handle = DirectoryHandle.Open(_posix, directory);

        handle.ReplaceFile("f", "new"u8, Platform.StrangerUid, Platform.StrangerGid, (FilePermissions)Convert.ToUInt32("640", 8));

        Syscall.lstat(Path.Join(directory, "f"), out var stat);
        Assert.Equal(Platform.StrangerUid, stat.st_uid);
        Assert.Equal(Platform.StrangerGid, stat.st_gid);
        Assert.Equal((FilePermissions)Convert.ToUInt32("640", 8), stat.st_mode & FilePermissions.ALLPERMS);
        Assert.Equal(["f"], Directory.GetFileSystemEntries(directory).Select(Path.GetFileName));
    }

    [Fact]
    public void Replacing_a_file_clears_what_a_killed_agent_left_but_not_what_a_live_one_is_writing()
    {
        string directory = _dir.Create("d");
        int dead = Enumerable.Range(400_000, 1000).First(pid => !Directory.Exists($"/proc/{pid}"));
        File.WriteAllText(Path.Join(directory, $"..packet-init.packet-tmp-{dead}"), "half");
        File.WriteAllText(Path.Join(directory, ".other.packet-tmp-1"), "another file's, pid 1 is alive");
        File.WriteAllText(Path.Join(directory, "..packet-init.packet-tmp-1"), "a live agent's");
        using var handle = DirectoryHandle.Open(_posix, directory);

        handle.ReplaceFile(".packet-init", "{}"u8, _posix.EffectiveUserId, _posix.EffectiveGroupId, (FilePermissions)Convert.ToUInt32("644", 8));

        Assert.Equal(["..packet-init.packet-tmp-1", ".other.packet-tmp-1", ".packet-init"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Reading_through_a_symlink_is_refused()
    {
        string directory = _dir.Create("d");
        File.WriteAllText(_dir["target"], "secret");
        File.CreateSymbolicLink(Path.Join(directory, "link"), _dir["target"]);
        using var handle = DirectoryHandle.Open(_posix, directory);

        var refusal = Assert.Throws<UnsafeWorkspaceException>(() => handle.ReadFile("link", 1024, out _));

        Assert.Contains("it is a symlink", refusal.Message);
    }

    [Fact]
    public async Task A_second_agent_waits_for_the_lock_and_gets_it_once_the_first_lets_go()
    {
        using var state = DirectoryHandle.Open(_posix, _dir.Create("state"));
        var first = WorkspaceLock.Acquire(_posix, state, TimeProvider.System, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), (_, _) => { }, CancellationToken.None);
        Assert.NotNull(first);
        var heard = new List<string>();

        var waiting = Task.Run(() => WorkspaceLock.Acquire(_posix, state, TimeProvider.System, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(10), (holder, _) => heard.Add(holder), CancellationToken.None));
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted);
        first.Dispose();
        using var second = await waiting;

        Assert.NotNull(second);
        Assert.Contains($"pid {Environment.ProcessId} on ", Assert.Single(heard));
    }

    [Fact]
    public void A_lock_held_past_the_timeout_is_given_up()
    {
        using var state = DirectoryHandle.Open(_posix, _dir.Create("state"));
        using var first = WorkspaceLock.Acquire(_posix, state, TimeProvider.System, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), (_, _) => { }, CancellationToken.None);

        var second = WorkspaceLock.Acquire(_posix, state, new SteppingClock(), TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(10), (_, _) => { }, CancellationToken.None);

        Assert.Null(second);
    }

    [Fact]
    public async Task A_stop_request_ends_the_wait_for_the_lock_at_once()
    {
        using var state = DirectoryHandle.Open(_posix, _dir.Create("state"));
        using var first = WorkspaceLock.Acquire(_posix, state, TimeProvider.System, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), (_, _) => { }, CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var waiting = Task.Run(() => WorkspaceLock.Acquire(_posix, state, TimeProvider.System, TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(10), (_, _) => { }, stop.Token));
        await Task.Delay(200);

        var asked = System.Diagnostics.Stopwatch.StartNew();
        await stop.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(() => waiting);
        Assert.True(asked.Elapsed < TimeSpan.FromSeconds(1), $"the wait went on for {asked.Elapsed}");
    }

    private StepResult Profile(string workspace, bool dryRun = false)
    {
        var options = new BootOptions { Workspace = workspace, Home = _dir.Create("live-home"), NvidiaSmi = "x", TerminationLog = _dir["termination-log"], DryRun = dryRun };
        using var open = DirectoryHandle.Open(_posix, workspace);
        return Steps.Run(new ShellProfileStep(_posix, NullLogger.Instance), new HomeState(open, HomeStatus.Seeded), options, recorded: _changes).Result;
    }

    [RootFact]
    public void The_profile_step_keeps_the_owner_and_mode_of_an_existing_bashrc_and_gives_bin_to_the_homes_account()
    {
        Require.Root();
        string workspace = _dir.Create("ws");
        string home = _dir.Create("ws/home");
        File.WriteAllText(Path.Join(home, ".bashrc"), "export A=1\n");
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.StrangerUid}:{Platform.StrangerGid}", home, _dir.Create("live-home"));
        ChildProcess.MustSucceed("chmod", "600", Path.Join(home, ".bashrc"));
        var result = Profile(workspace);

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Syscall.lstat(Path.Join(home, ".bashrc"), out var profile);
        Assert.Equal(Platform.StrangerUid, profile.st_uid);
        Assert.Equal((FilePermissions)Convert.ToUInt32("600", 8), profile.st_mode & FilePermissions.ALLPERMS);
        Assert.StartsWith("export A=1\n\n# >>> packet-persist >>>", File.ReadAllText(Path.Join(home, ".bashrc")));
        Syscall.lstat(Path.Join(workspace, "bin"), out var bin);
        Assert.Equal(Platform.StrangerUid, bin.st_uid);
    }

    [Fact]
    public void The_profile_step_leaves_a_bashrc_that_is_not_utf8_alone_and_says_what_to_add()
    {
        string workspace = _dir.Create("ws");
        string home = _dir.Create("ws/home");
        byte[] latin1 = [0x65, 0x63, 0x68, 0x6f, 0x20, 0xe9, 0x0a];
        File.WriteAllBytes(Path.Join(home, ".bashrc"), latin1);
        var result = Profile(workspace);

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.Contains("is not UTF-8 text", result.Summary);
        Assert.Equal(latin1, File.ReadAllBytes(Path.Join(home, ".bashrc")));
    }

    private BootOptions Options(string workspace) =>
        new() { Workspace = workspace, Home = _dir.Create("live-home"), TerminationLog = _dir["termination-log"] };

    [Theory]
    [InlineData("present")]
    [InlineData("missing")]
    [InlineData("a file")]
    public void Guard_dry_run_and_run_come_from_the_same_decision(string workspaceIs)
    {
        string workspace = _dir["ws"];
        if (workspaceIs == "present")
        {
            _dir.Create("ws/home");
        }
        else if (workspaceIs == "a file")
        {
            File.WriteAllText(workspace, "not a directory");
        }

        var (dryRun, planned, run, opened) = Steps.DryRunThenRun(new GuardStep(_posix, TimeProvider.System), () => Options(workspace), Options(workspace), _dir.Path, recorded: _changes);
        using var handle = opened;
        planned?.Dispose();

        // A root guard makes its part of a fresh volume (the dry run says it would); otherwise it only looks.
        Assert.Equal(dryRun.Summary.Replace("would make", "made", StringComparison.Ordinal).Replace("; make", "; made", StringComparison.Ordinal), run.Summary);
        Assert.Equal(dryRun.Outcome, run.Outcome);
        Assert.Equal(workspaceIs == "present", opened is not null);
        Assert.Equal(workspaceIs == "present" ? StepOutcome.Ok : StepOutcome.Warning, run.Outcome);
        Assert.Equal(workspaceIs == "present" && Platform.IsRoot, Directory.Exists(Path.Join(workspace, ".packet")));
    }

    [Fact]
    public void Marker_dry_run_and_run_come_from_the_same_decision()
    {
        string workspace = _dir.Create("ws");
        _dir.Create("ws/home");
        using var handle = DirectoryHandle.Open(_posix, workspace);

        var (dryRun, planned, run, marked) = Steps.DryRunThenRun(
            new MarkerStep(_posix, TimeProvider.System), () => new HomeState(handle, HomeStatus.Copied, new Copy.CopyReport()), Options(workspace), _dir.Path, recorded: _changes);

        string marker = Path.Join(workspace, "home/.packet-init");
        Assert.Equal($"would write {marker}", dryRun.Summary);
        Assert.Equal($"wrote {marker}", run.Summary);
        Assert.True(File.Exists(marker));
        Assert.Equal(HomeStatus.Seeded, planned.Status);
        Assert.Equal(planned.Status, marked.Status);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Profile_dry_run_and_run_come_from_the_same_decision(bool utf8)
    {
        string workspace = _dir.Create("ws");
        string bashrc = Path.Join(_dir.Create("ws/home"), ".bashrc");
        byte[] before = utf8 ? "export A=1\n"u8.ToArray() : [0x65, 0x63, 0x68, 0x6f, 0x20, 0xe9, 0x0a];
        File.WriteAllBytes(bashrc, before);
        using var handle = DirectoryHandle.Open(_posix, workspace);

        var (dryRun, _, run, _) = Steps.DryRunThenRun(
            new ShellProfileStep(_posix, NullLogger.Instance), () => new HomeState(handle, HomeStatus.Seeded), Options(workspace), _dir.Path, recorded: _changes);

        if (!utf8)
        {
            // The drift this guards against: the run refused such a .bashrc while the dry run said it "would update" it.
            Assert.Equal(StepOutcome.Warning, dryRun.Outcome);
            Assert.Equal(dryRun, run);
            Assert.Equal(before, File.ReadAllBytes(bashrc));
            return;
        }

        string variables = dryRun.Summary[dryRun.Summary.LastIndexOf('(')..];
        Assert.Equal($"would create {workspace}/bin; would update {bashrc} with the workspace block {variables}", dryRun.Summary);
        Assert.Equal($"updated the workspace block in {bashrc} {variables}", run.Summary);
        Assert.True(Directory.Exists(Path.Join(workspace, "bin")));
        Assert.Contains("# >>> packet-persist >>>", File.ReadAllText(bashrc));
    }
}
