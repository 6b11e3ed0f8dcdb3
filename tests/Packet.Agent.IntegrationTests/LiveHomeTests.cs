using System.Collections;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Exec;
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

        var wiring = Wire(new LiveHome(PosixSystem.Instance, _ => false, () => true), Live, Persisted);

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
        var liveHome = new LiveHome(PosixSystem.Instance, _ => false, () => true);
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
        var wiring = Wire(new LiveHome(PosixSystem.Instance, _ => true, () => true), workspace, Persisted);

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

        var wiring = Wire(new LiveHome(PosixSystem.Instance, path => path == Live, () => true), Live, Persisted);

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
            var wiring = Wire(new LiveHome(PosixSystem.Instance, MountTable.IsMountPoint, () => true), Live, Persisted);

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

        var wiring = Wire(new LiveHome(PosixSystem.Instance, _ => false, () => false), Live, Persisted);

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
        var step = new ExecStep(resolver, () => new Hashtable { ["PATH"] = "/usr/bin:/bin", ["HOME"] = Live }, new LiveHome(PosixSystem.Instance, _ => false, () => true));
        var options = new BootOptions { Workspace = workspace, Home = Live, Command = ["sh", "-c", "exit 0"] };
        using var handle = DirectoryHandle.Open(PosixSystem.Instance, workspace);

        var (dryRun, planned, run, decided) = Steps.DryRunThenRun(step, () => new HomeState(handle, HomeStatus.Seeded), options, _dir.Path);

        // The dry run names the wiring the run then does, and hands on the same execve.
        var wiring = dryRun.Summary["would replace the agent with sh -c exit 0; ".Length..];
        Assert.StartsWith(Platform.IsRoot ? $"would link {Live} to {Persisted}" : string.Empty, wiring);
        Assert.EndsWith($"replacing the agent with {decided.Plan!.Path} -c exit 0", run.Summary);
        Assert.Equal(planned.Plan!.Path, decided.Plan.Path);
        Assert.Equal(planned.Plan.Arguments, decided.Plan.Arguments);
        Assert.Equal(Platform.IsRoot ? Persisted : null, new FileInfo(Live).LinkTarget);
    }
}
