using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// What makes a seed durable before it is marked, on real volumes: one syncfs on kernel file
/// systems; on FUSE, where the kernel answers syncfs without asking the daemon (fs/fuse/inode.c,
/// fuse_sync_fs), an fsync of every file and directory, which the daemon passes to its backing store.
/// </summary>
public sealed class DurabilityTests : IDisposable
{
    private readonly TempDirectory _dir = new("durability");

    public void Dispose() => _dir.Dispose();

    private (SeedOutcome Outcome, int Entries) Seed(TestVolume volume, FaultyPosix posix)
    {
        string home = _dir.Create("home");
        for (int i = 0; i < 20; i++)
        {
            HomeFixture.Write(home, $"dir-{i % 4}/file-{i}.txt", new string('x', 100 * i));
        }

        HomeFixture.Symlink(home, "dir-0/file-0.txt", "link");
        int entries = Directory.GetFileSystemEntries(home, "*", SearchOption.AllDirectories).Length;
        string workspace = Path.Join(volume.Path, "ws");
        Directory.CreateDirectory(workspace);
        using var workspaceHandle = DirectoryHandle.Open(posix, workspace);
        using var source = DirectoryHandle.Open(posix, home);
        var seeder = new HomeSeeder(posix, new CopyOptions { PreserveOwnership = true }, TimeSpan.FromMinutes(5));
        return (seeder.Seed(workspaceHandle, source, null, new QuietObserver()), entries);
    }

    [RootFact]
    public void On_FUSE_every_copied_file_and_directory_is_fsynced_because_syncfs_does_not_reach_the_daemon()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Bindfs);
        var posix = new FaultyPosix();

        var (outcome, entries) = Seed(volume, posix);

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.False(outcome.Report!.Volume.FlushedBySyncFs);
        // 20 files and 4 directories, each once, and the copy's top directory (the symlink lives in its directory's entries).
        Assert.Equal(25, entries);
        Assert.True(posix.FSyncCalls >= 25, $"{posix.FSyncCalls} fsync calls");
    }

    [RootTheory]
    [InlineData(VolumeKind.Ext4)]
    [InlineData(VolumeKind.Tmpfs)]
    public void On_a_kernel_file_system_one_syncfs_makes_the_copy_durable_and_files_are_not_fsynced_one_by_one(VolumeKind kind)
    {
        Require.Root();
        using var volume = new TestVolume(kind);
        var posix = new FaultyPosix();

        var (outcome, _) = Seed(volume, posix);

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.True(outcome.Report!.Volume.FlushedBySyncFs);
        Assert.True(posix.FSyncCalls <= 3, $"{posix.FSyncCalls} fsync calls: only the directories the home is published in");
    }

    [RootFact]
    public void A_failed_fsync_on_FUSE_stops_the_seed_before_the_home_is_published()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Bindfs);
        var posix = new FaultyPosix((call, _) => call == "fsync" ? Errno.EIO : null);

        var (outcome, _) = Seed(volume, posix);

        Assert.False(outcome.Complete);
        Assert.Contains("fsync", outcome.Problem);
        Assert.Contains("Input/output error", outcome.Problem);
        Assert.False(Directory.Exists(Path.Join(volume.Path, "ws", "home")));
    }

    [RootTheory]
    [InlineData(VolumeKind.Ext4, true)]
    [InlineData(VolumeKind.Bindfs, false)]
    public void Large_files_start_their_writeback_as_they_are_written_where_one_syncfs_ends_the_copy(VolumeKind kind, bool writeBehind)
    {
        Require.Root();
        using var volume = new TestVolume(kind);
        var posix = new FaultyPosix();
        HomeFixture.WriteBytes(_dir.Create("home"), "model.safetensors", HomeFixture.RandomBytes(20 << 20, seed: 7));

        var (outcome, _) = Seed(volume, posix);

        Assert.True(outcome.Complete, outcome.Problem);
        // 20 files of at most 1.9 KB each, and one of 20 MiB in chunks of at most 8 MiB: only the large one's chunks.
        long[] expected = writeBehind ? [4L << 20, 8L << 20, 8L << 20] : [];
        Assert.Equal(expected, posix.WritebackStarted.Select(range => range.Length).Order());
    }

    private sealed class QuietObserver : ISeedObserver
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
