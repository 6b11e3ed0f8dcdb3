using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// NFS cannot be mounted on these machines (no NFS client in the kernel), so its answers are
/// injected through the IPosix seam over a real file system: the Linux NFS client refuses every
/// renameat2 flag with EINVAL (fs/nfs/dir.c, nfs_rename: <c>if (flags) return -EINVAL;</c>), and a
/// root_squash export answers root's chown with EPERM (exports(5)). FUSE volumes are tested for
/// real in VolumeTests.
/// </summary>
public sealed class NetworkVolumeTests : IDisposable
{
    private readonly TempDirectory _dir = new("nfs");

    public NetworkVolumeTests()
    {
        Home = _dir.Create("home");
        Workspace = _dir.Create("workspace");
    }

    private string Home { get; }

    private string Workspace { get; }

    private string Persisted => Path.Join(Workspace, "home");

    public void Dispose() => _dir.Dispose();

    private static FaultyPosix NfsRenames(Func<string, string?, Errno?>? more = null) =>
        new((call, name) => call == "renameat2" ? Errno.EINVAL : more?.Invoke(call, name));

    private SeedOutcome Seed(IPosix posix)
    {
        using var workspace = DirectoryHandle.Open(posix, Workspace);
        using var source = DirectoryHandle.Open(posix, Home);
        return new HomeSeeder(posix, new CopyOptions { PreserveOwnership = Platform.IsRoot }, TimeSpan.FromMinutes(5)).Seed(workspace, source, null, new SilentObserver());
    }

    [Fact]
    public void Where_rename_flags_are_refused_as_NFS_refuses_them_the_home_is_published_whole()
    {
        HomeFixture.Build(Home, rootOnlyEntries: false);

        var outcome = Seed(NfsRenames());

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.Empty(TreeSnapshot.Take(Persisted).DifferencesFrom(TreeSnapshot.Take(Home), include: p => p != "run/agent.sock"));
        Assert.False(Directory.Exists(Path.Join(Workspace, ".packet", "staging")));
    }

    [Fact]
    public void Where_rename_flags_are_refused_a_merge_still_replaces_nothing_the_user_has()
    {
        HomeFixture.Write(Home, ".bashrc", "image");
        HomeFixture.Write(Home, ".config/a", "image a");
        HomeFixture.Write(Home, ".config/b", "image b");
        HomeFixture.Write(Home, "notes/todo", "image notes");
        HomeFixture.Write(Persisted, ".bashrc", "user");
        HomeFixture.Write(Persisted, ".config/a", "user a");
        HomeFixture.Write(Persisted, "notes/mine", "user notes");

        var outcome = Seed(NfsRenames());

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.Equal("user", File.ReadAllText(Path.Join(Persisted, ".bashrc")));
        Assert.Equal("user a", File.ReadAllText(Path.Join(Persisted, ".config/a")));
        Assert.Equal("image b", File.ReadAllText(Path.Join(Persisted, ".config/b")));
        Assert.Equal("user notes", File.ReadAllText(Path.Join(Persisted, "notes/mine")));
        Assert.Equal("image notes", File.ReadAllText(Path.Join(Persisted, "notes/todo")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_no_replace_rename_never_replaces_a_file_or_a_directory_where_flags_are_refused(bool withoutHardLinks)
    {
        var posix = NfsRenames((call, _) => withoutHardLinks && call == "linkat" ? Errno.EPERM : null);
        string root = _dir.Create("renames");
        File.WriteAllText(Path.Join(root, "a"), "a");
        File.WriteAllText(Path.Join(root, "b"), "b");
        HomeFixture.Write(root, "full/inside", "kept");
        Directory.CreateDirectory(Path.Join(root, "empty"));
        Directory.CreateDirectory(Path.Join(root, "d"));
        using var directory = DirectoryHandle.Open(posix, root);

        int onFile = NoReplaceRename.Move(posix, directory.Fd, "a", directory.Fd, "b");
        int onFull = NoReplaceRename.Move(posix, directory.Fd, "d", directory.Fd, "full");
        int onEmpty = NoReplaceRename.Move(posix, directory.Fd, "d", directory.Fd, "empty");
        int fileMoved = NoReplaceRename.Move(posix, directory.Fd, "a", directory.Fd, "c");
        int directoryMoved = NoReplaceRename.Move(posix, directory.Fd, "d", directory.Fd, "e");

        Assert.Equal(-(int)Errno.EEXIST, onFile);
        Assert.Equal(-(int)Errno.EEXIST, onFull);
        Assert.Equal(-(int)Errno.EEXIST, onEmpty);
        Assert.Equal("b", File.ReadAllText(Path.Join(root, "b")));
        Assert.Equal("kept", File.ReadAllText(Path.Join(root, "full/inside")));
        Assert.Equal(0, fileMoved);
        Assert.Equal(0, directoryMoved);
        Assert.Equal("a", File.ReadAllText(Path.Join(root, "c")));
        Assert.False(File.Exists(Path.Join(root, "a")));
        Assert.True(Directory.Exists(Path.Join(root, "e")) && !Directory.Exists(Path.Join(root, "d")));
    }

    [Fact]
    public void Where_rename_flags_are_refused_the_boot_report_still_keeps_its_history()
    {
        var posix = NfsRenames();
        var writer = new BootReportWriter(posix, Path.Join(Workspace, "run"));
        using var workspace = DirectoryHandle.Open(posix, Workspace);
        for (int boot = 1; boot <= 3; boot++)
        {
            Assert.Null(writer.Write(workspace, Report(boot)));
        }

        Assert.Contains("\"exit_code\":3", File.ReadAllText(Path.Join(Workspace, ".packet", "last-boot.json")));
        Assert.Contains("\"exit_code\":2", File.ReadAllText(Path.Join(Workspace, ".packet", "last-boot.1.json")));
        Assert.Contains("\"exit_code\":1", File.ReadAllText(Path.Join(Workspace, ".packet", "last-boot.2.json")));
    }

    [RootFact]
    public void As_root_squashed_root_the_owners_are_counted_lost_and_no_mode_is_looser_than_cp_a_leaves_it()
    {
        Require.Root();
        HomeFixture.Write(Home, "private/notes", "mine", mode: "600");
        HomeFixture.Chmod(Home, "private", "700");
        HomeFixture.Write(Home, "bin/tool", "#!/bin/sh\n", mode: "4755");
        HomeFixture.Write(Home, "shared/file", "shared");
        HomeFixture.Chmod(Home, "shared", "1777");
        HomeFixture.Symlink(Home, "private/notes", "link");
        ChildProcess.MustSucceed("chown", "-hR", $"{Platform.StrangerUid}:{Platform.StrangerGid}", Home);
        var squashed = NfsRenames((call, _) => call is "fchown" or "lchownat" ? Errno.EPERM : null);

        var outcome = Seed(squashed);

        Assert.True(outcome.Complete, outcome.Problem);
        var owners = Assert.Single(outcome.Report!.Losses.Summaries(), loss => loss.Kind == LossKind.Owners);
        Assert.Equal(8, owners.Count); // the home, 3 directories, 3 files and the symlink
        Assert.Contains("EPERM", owners.Reason);
        var copy = TreeSnapshot.Take(Persisted);
        Assert.Equal((FilePermissions)0b111_000_000, copy["private"].Mode);
        Assert.Equal((FilePermissions)0b110_000_000, copy["private/notes"].Mode);
        Assert.Equal((FilePermissions)0b111_101_101, copy["bin/tool"].Mode); // setuid would make root's program of a user's file
        Assert.Equal((FilePermissions)0b111_111_111, copy["shared"].Mode); // cp -a drops sticky too when it cannot chown
        Assert.All(copy.Entries.Values, entry => Assert.Equal(0u, entry.Uid));
    }

    private static BootReport Report(int exitCode) =>
        new("packet-agent", "test", null, DateTimeOffset.UnixEpoch, 0.1, exitCode, BootEnding.Failed, [], null, [], []);

    private sealed class SilentObserver : ISeedObserver
    {
        public void Planned(SeedPlan plan)
        {
        }

        public void Progress(CopyReport report, TreeSize total)
        {
        }

        public void Problem(CopyProblem problem)
        {
        }
    }
}
