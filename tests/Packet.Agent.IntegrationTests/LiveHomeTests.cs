using System.Collections;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Wiring the live home to the persisted one, on a real file system.</summary>
public sealed class LiveHomeTests : IDisposable
{
    private readonly TempDirectory _dir = new("live-home");

    public LiveHomeTests()
    {
        Live = _dir.Create("root");
        Persisted = _dir.Create("workspace/home");
        HomeFixture.Write(Live, ".image-file", "from the image");
    }

    private string Live { get; }

    private string Persisted { get; }

    public void Dispose() => _dir.Dispose();

    private static HomeWiring Wire(LiveHome liveHome, string live, string persisted) => liveHome.Apply(liveHome.Decide(live, persisted));

    [RootFact]
    public void As_root_an_ordinary_home_is_moved_aside_and_replaced_by_a_link()
    {
        Require.Root();

        var wiring = Wire(new LiveHome(new FaultyPosix(), _ => false, () => true, TimeProvider.System), Live, Persisted);

        Assert.False(wiring.IsWarning, wiring.Summary);
        Assert.Null(wiring.HomeForCommand);
        Assert.Equal(Persisted, new FileInfo(Live).LinkTarget);
        Assert.Equal("from the image", File.ReadAllText(Path.Join(Live + LiveHome.ImageSuffix, ".image-file")));
        Assert.Contains($"the image's home was moved to {Live}{LiveHome.ImageSuffix}", wiring.Summary);
    }

    [RootFact]
    public void A_home_already_linked_is_left_as_it_is()
    {
        Require.Root();
        var liveHome = new LiveHome(new FaultyPosix(), _ => false, () => true, TimeProvider.System);
        Wire(liveHome, Live, Persisted);

        var again = Wire(liveHome, Live, Persisted);

        Assert.Equal($"{Live} already links to {Persisted}", again.Summary);
        Assert.False(Directory.Exists(Live + LiveHome.ImageSuffix + "-"), "nothing moved twice");
    }

    [RootFact]
    public void A_live_home_that_is_the_whole_volume_is_named_with_what_to_change()
    {
        Require.Root();
        string workspace = Path.GetDirectoryName(Persisted)!;

        // What podman 4.3 does with subPath: home on a claim: the whole volume lands at the live home.
        var wiring = Wire(new LiveHome(new FaultyPosix(), _ => true, () => true, TimeProvider.System), workspace, Persisted);

        Assert.True(wiring.IsWarning);
        Assert.Equal(Persisted, wiring.HomeForCommand);
        Assert.Contains($"{workspace} is the workspace itself ({workspace}), not its home", wiring.Summary);
        Assert.Contains("Mount the volume's home directory at", wiring.Summary);
        Assert.False(Directory.Exists(workspace + LiveHome.ImageSuffix));
    }

    [RootFact]
    public void A_mounted_home_is_not_replaced_and_the_command_gets_HOME_instead()
    {
        Require.Root();

        var wiring = Wire(new LiveHome(new FaultyPosix(), path => path == Live, () => true, TimeProvider.System), Live, Persisted);

        Assert.DoesNotContain("run the agent as root", wiring.Summary); // it is root already
        Assert.True(wiring.IsWarning);
        Assert.Equal(Persisted, wiring.HomeForCommand);
        Assert.Contains("is a mount point", wiring.Summary);
        Assert.Contains("mount the volume's home at", wiring.Summary);
        Assert.True(File.Exists(Path.Join(Live, ".image-file")));
    }

    [RootFact]
    public void A_home_that_is_the_volume_itself_needs_nothing()
    {
        Require.Root();
        Directory.Delete(Live, recursive: true);
        Directory.CreateDirectory(Live);
        ChildProcess.MustSucceed("mount", "--bind", Persisted, Live);
        try
        {
            var wiring = Wire(new LiveHome(new FaultyPosix(), MountTable.IsMountPoint, () => true, TimeProvider.System), Live, Persisted);

            Assert.False(wiring.IsWarning);
            Assert.Contains("already is the persisted home", wiring.Summary);
        }
        finally
        {
            ChildProcess.MustSucceed("umount", Live);
        }
    }

    [Fact]
    public void The_mount_table_knows_the_root_and_not_a_plain_directory()
    {
        Assert.True(MountTable.IsMountPoint("/"));
        Assert.False(MountTable.IsMountPoint(Live));
    }

    [RootFact]
    public void Outside_a_container_the_home_is_never_replaced()
    {
        Require.Root();

        var wiring = Wire(new LiveHome(new FaultyPosix(), _ => false, () => false, TimeProvider.System), Live, Persisted);

        Assert.True(wiring.IsWarning);
        Assert.Equal(Persisted, wiring.HomeForCommand);
        Assert.Contains("not a container", wiring.Summary);
        Assert.Null(new DirectoryInfo(Live).LinkTarget);
    }

    [Fact]
    public void Exec_dry_run_and_run_come_from_the_same_decision()
    {
        string workspace = Path.GetDirectoryName(Persisted)!;
        var resolver = new CommandResolver(new System.IO.Abstractions.FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0);
        var changes = new ChangeLog();
        var posix = new RecordingPosix(changes);
        var step = new ExecStep(resolver, new ProgramTrust(posix), () => new Hashtable { ["PATH"] = "/usr/bin:/bin", ["HOME"] = Live }, new LiveHome(posix, _ => false, () => true, TimeProvider.System));
        var options = new BootOptions { Workspace = workspace, Home = Live, Command = ["sh", "-c", "exit 0"] };
        using var handle = DirectoryHandle.Open(posix, workspace);

        var (dryRun, planned, run, decided) = Steps.DryRunThenRun(step, () => new HomeState(handle, HomeStatus.Seeded), options, _dir.Path, recorded: changes);

        // The dry run names the wiring the run then does, and hands on the same execve.
        var wiring = dryRun.Summary["would replace the agent with sh -c exit 0; ".Length..];
        Assert.StartsWith(Platform.IsRoot ? $"would link {Live} to {Persisted}" : string.Empty, wiring);
        Assert.EndsWith($"replacing the agent with {decided.Plan!.Path} -c exit 0", run.Summary);
        Assert.Equal(planned.Plan!.Path, decided.Plan.Path);
        Assert.Equal(planned.Plan.Arguments, decided.Plan.Arguments);
        Assert.Equal(Platform.IsRoot ? Persisted : null, new FileInfo(Live).LinkTarget);
    }
}

/// <summary>The live home's rarer paths: refusals, overlayfs's EXDEV, a failed link put back, names already taken.</summary>
public sealed class LiveHomeEdgeTests : IDisposable
{
    private readonly TempDirectory _dir = new("live-home-edges");

    public LiveHomeEdgeTests()
    {
        Live = _dir.Create("root");
        Persisted = _dir.Create("workspace/home");
        HomeFixture.Write(Live, ".image-file", "from the image");
    }

    private string Live { get; }

    private string Persisted { get; }

    public void Dispose() => _dir.Dispose();

    private static HomeWiring Wire(IPosix posix, string live, string persisted, Func<string, bool>? isMountPoint = null)
    {
        var liveHome = new LiveHome(posix, isMountPoint ?? (_ => false), () => true, TimeProvider.System);
        return liveHome.Apply(liveHome.Decide(live, persisted));
    }

    private string Fallback(string why, bool asRoot = true) =>
        $"HOME={Persisted} for the command only: {why}. Shells started another way (kubectl exec) still get {Live}; "
        + $"to wire them too, mount the volume's home at {Live} (a subPath mount, see container/k8s/pod-init-container.yaml)"
        + (asRoot ? string.Empty : " or run the agent as root");

    [RootFact]
    public void A_missing_live_home_is_simply_linked()
    {
        Require.Root();
        Directory.Delete(Live, recursive: true);

        var wiring = Wire(new FaultyPosix(), Live, Persisted);

        Assert.Equal(new HomeWiring(null, $"linked {Live} to {Persisted}"), wiring);
        Assert.Equal(Persisted, new FileInfo(Live).LinkTarget);
    }

    [RootFact]
    public void The_plan_names_the_link_and_where_the_image_home_goes()
    {
        Require.Root();
        var liveHome = new LiveHome(new FaultyPosix(), _ => false, () => true, TimeProvider.System);

        Assert.Equal(
            $"would link {Live} to {Persisted}, moving the image's home aside to {Live}{LiveHome.ImageSuffix} (where overlayfs cannot move it, EXDEV: removing this container's view of it instead, which the image keeps)",
            liveHome.Decide(Live, Persisted).Preview);
        Directory.Delete(Live, recursive: true);
        Assert.Equal($"would link {Live} to {Persisted}", liveHome.Decide(Live, Persisted).Preview);
    }

    [RootFact]
    public void An_aside_name_already_taken_gets_the_time_and_the_first_is_kept()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "root.packet-image/earlier", "an earlier container's");

        var wiring = Wire(new FaultyPosix(), Live, Persisted);

        string aside = Assert.Single(Directory.GetDirectories(_dir.Path, "root.packet-image-*"));
        Assert.Matches(@"root\.packet-image-\d{8}T\d{6}Z$", aside);
        Assert.Equal("from the image", File.ReadAllText(Path.Join(aside, ".image-file")));
        Assert.True(File.Exists(Path.Join(_dir.Path, "root.packet-image/earlier")));
        Assert.EndsWith($"the image's home was moved to {aside}", wiring.Summary, StringComparison.Ordinal);
    }

    [RootFact]
    public void On_overlayfs_that_cannot_move_the_image_layers_directory_the_containers_view_is_cleared_and_linked()
    {
        Require.Root();
        var posix = new FaultyPosix((call, name) => call.StartsWith("renameat", StringComparison.Ordinal) && name is not null && name.EndsWith(LiveHome.ImageSuffix, StringComparison.Ordinal) ? Errno.EXDEV : null);

        var wiring = Wire(posix, Live, Persisted);

        Assert.Equal(new HomeWiring(null, $"linked {Live} to {Persisted}; this container's view of the image's home was cleared (overlayfs cannot move it; the image keeps it)"), wiring);
        Assert.Equal(Persisted, new FileInfo(Live).LinkTarget);
        Assert.False(Directory.Exists(Live + LiveHome.ImageSuffix));
    }

    [RootFact]
    public void The_exec_steps_plan_names_the_removal_overlayfs_forces_and_the_run_makes_no_other_change()
    {
        Require.Root();
        var changes = new ChangeLog();
        var posix = new RecordingPosix(changes, new FaultyPosix((call, name) => call.StartsWith("renameat", StringComparison.Ordinal) && name is not null && name.EndsWith(LiveHome.ImageSuffix, StringComparison.Ordinal) ? Errno.EXDEV : null));
        var resolver = new CommandResolver(new System.IO.Abstractions.FileSystem(), path => Syscall.access(path, AccessModes.X_OK) == 0);
        var step = new ExecStep(resolver, new ProgramTrust(posix), () => new Hashtable { ["PATH"] = "/usr/bin:/bin", ["HOME"] = Live }, new LiveHome(posix, _ => false, () => true, TimeProvider.System));
        var options = new BootOptions { Workspace = Path.GetDirectoryName(Persisted)!, Home = Live, Command = ["true"] };
        using var workspace = DirectoryHandle.Open(posix, options.Workspace);
        using (var plan = step.Decide(new HomeState(workspace, HomeStatus.Seeded), new BootSettings(options with { DryRun = true }, new StopRequest(), Steps.Account(options))))
        {
            Assert.True(plan.Changes.Contains(new PlannedChange(ChangeKind.RemoveTree, Live, Condition: $"{WiringPlan.ClearedWhen}: this container's view of it only, which the image keeps")), string.Join("\n", plan.Changes));
            Assert.Contains(plan.Changes, c => c.Describe() == $"remove {Live} and everything in it, where overlayfs cannot move it, EXDEV: this container's view of it only, which the image keeps");
        }

        var (result, _) = Steps.Run(step, new HomeState(workspace, HomeStatus.Seeded), options, recorded: changes);
        Assert.Contains("this container's view of the image's home was cleared", result.Summary);
        Assert.Equal(Persisted, new FileInfo(Live).LinkTarget);
    }

    [RootFact]
    public void A_home_that_can_be_neither_moved_nor_cleared_is_left_and_the_command_gets_HOME()
    {
        Require.Root();
        var posix = new FaultyPosix((call, name) =>
            (call.StartsWith("renameat", StringComparison.Ordinal) && name is not null && name.EndsWith(LiveHome.ImageSuffix, StringComparison.Ordinal)) ? Errno.EXDEV
            : call == "openat" && name == _dir.Path ? Errno.EACCES
            : null);

        var wiring = Wire(posix, Live, Persisted);

        Assert.Equal(new HomeWiring(Persisted, Fallback("it could not be moved aside (EXDEV: overlayfs) nor cleared: Permission denied (EACCES)"), IsWarning: true), wiring);
        Assert.True(File.Exists(Path.Join(Live, ".image-file")));
    }

    [RootFact]
    public void A_move_aside_refused_for_another_reason_leaves_the_home_and_says_why()
    {
        Require.Root();
        var posix = new FaultyPosix((call, name) => call.StartsWith("renameat", StringComparison.Ordinal) && name is not null && name.EndsWith(LiveHome.ImageSuffix, StringComparison.Ordinal) ? Errno.EBUSY : null);

        var wiring = Wire(posix, Live, Persisted);

        Assert.Equal(new HomeWiring(Persisted, Fallback("moving it aside failed: Device or resource busy (EBUSY)"), IsWarning: true), wiring);
        Assert.True(File.Exists(Path.Join(Live, ".image-file")));
    }

    [RootFact]
    public void A_link_that_cannot_be_made_puts_the_image_home_back()
    {
        Require.Root();
        var posix = new FaultyPosix((call, _) => call == "symlinkat" ? Errno.ENOSPC : null);

        var wiring = Wire(posix, Live, Persisted);

        Assert.Equal(new HomeWiring(Persisted, Fallback("creating the link failed: No space left on device (ENOSPC)"), IsWarning: true), wiring);
        Assert.True(File.Exists(Path.Join(Live, ".image-file")));
        Assert.False(Directory.Exists(Live + LiveHome.ImageSuffix));
    }

    [Fact]
    public void An_agent_that_is_not_root_is_told_to_run_as_root_or_mount_the_home()
    {
        var wiring = Wire(new FaultyPosix { SeenAsUser = 1000 }, Live, Persisted);

        Assert.Equal(new HomeWiring(Persisted, Fallback("the agent is not root, so it cannot replace the live home", asRoot: false), IsWarning: true), wiring);
    }

    [RootFact]
    public void A_live_home_that_is_a_file_or_links_elsewhere_is_not_replaced()
    {
        Require.Root();
        Directory.Delete(Live, recursive: true);
        File.WriteAllText(Live, "a file");
        Assert.Equal(Fallback($"{Live} is not a directory"), Wire(new FaultyPosix(), Live, Persisted).Summary);

        File.Delete(Live);
        File.CreateSymbolicLink(Live, "/srv/elsewhere");
        Assert.Equal(Fallback($"{Live} is a symlink to /srv/elsewhere, which the agent does not replace"), Wire(new FaultyPosix(), Live, Persisted).Summary);
        Assert.Equal("/srv/elsewhere", new FileInfo(Live).LinkTarget);
    }

    [RootFact]
    public void The_mount_table_reads_escaped_mount_points_and_gives_the_file_system_type()
    {
        Require.Root();
        string spaced = _dir.Create("my home\\dir");
        ChildProcess.MustSucceed("mount", "-t", "tmpfs", "tmpfs", spaced);
        try
        {
            Assert.Equal(new Posix.MountFacts(true, "tmpfs"), MountTable.Describe(spaced));
            Assert.True(MountTable.IsMountPoint(spaced));
            Assert.Equal(new Posix.MountFacts(false, null), MountTable.Describe(_dir.Path));
        }
        finally
        {
            ChildProcess.MustSucceed("umount", spaced);
        }
    }
}
