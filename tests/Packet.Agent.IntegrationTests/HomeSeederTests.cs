using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The crash-safe seed: staging, space check, publish, merge, resume, progress.</summary>
public sealed class HomeSeederTests : IDisposable
{
    private readonly TempDirectory _dir = new("seeder");

    public HomeSeederTests()
    {
        Home = _dir.Create("home");
        Workspace = _dir.Create("workspace");
    }

    private string Home { get; }

    private string Workspace { get; }

    private string Persisted => Path.Join(Workspace, "home");

    private string Staged => Path.Join(Workspace, ".packet", "staging", "home");

    public void Dispose() => _dir.Dispose();

    private (SeedOutcome Outcome, RecordingObserver Observer) Seed(IPosix? posix = null, TimeSpan? progressEvery = null)
    {
        posix ??= PosixSystem.Instance;
        var observer = new RecordingObserver();
        using var workspace = DirectoryHandle.Open(posix, Workspace);
        using var source = DirectoryHandle.Open(posix, Home);
        var seeder = new HomeSeeder(posix, new CopyOptions { PreserveOwnership = Platform.IsRoot }, progressEvery ?? TimeSpan.FromMinutes(5));
        return (seeder.Seed(workspace, source, null, observer), observer);
    }

    [Fact]
    public void A_fresh_seed_is_staged_then_published_whole_and_the_staging_is_gone()
    {
        HomeFixture.Build(Home, rootOnlyEntries: false);

        var (outcome, observer) = Seed();

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.False(Directory.Exists(Staged));
        var differences = TreeSnapshot.Take(Persisted).DifferencesFrom(TreeSnapshot.Take(Home), include: p => p != "run/agent.sock");
        Assert.Empty(differences);
        var plan = Assert.Single(observer.Plans);
        Assert.False(plan.Merging);
        Assert.False(plan.Resuming);
    }

    [Fact]
    public void A_home_that_cannot_fit_is_not_copied_at_all_and_the_warning_gives_both_numbers()
    {
        HomeFixture.WriteBytes(Home, "big.bin", new byte[1 << 20]);

        var (outcome, _) = Seed(new FaultyPosix { FreeBytes = 4096 });

        Assert.False(outcome.Complete);
        Assert.Matches(@"the home needs 1\.0 MiB \(\d+ bytes\) but .* has 4\.0 KiB \(4096 bytes\) free; nothing was copied", outcome.Problem);
        Assert.False(Directory.Exists(Persisted));
        Assert.False(Directory.Exists(Staged));
    }

    [Fact]
    public void A_volume_that_fills_up_mid_copy_gets_its_space_back_and_no_home()
    {
        for (int i = 0; i < 20; i++)
        {
            HomeFixture.Write(Home, $"f{i}", "data");
        }

        int copies = 0;
        var posix = new FaultyPosix((call, _) => call == "copy_file_range" && Interlocked.Increment(ref copies) > 5 ? Errno.ENOSPC : null);

        var (outcome, _) = Seed(posix);

        Assert.False(outcome.Complete);
        Assert.Contains("No space left on device (ENOSPC)", outcome.Problem);
        Assert.Contains("the partial copy was removed", outcome.Problem);
        Assert.False(Directory.Exists(Staged));
        Assert.False(Directory.Exists(Persisted));
    }

    [Fact]
    public void An_interrupted_seed_is_resumed_from_its_staging_copy()
    {
        HomeFixture.Write(Home, "a.txt", "alpha");
        HomeFixture.Write(Home, "sub/b.txt", "bravo");
        HomeFixture.FixTimes(Home);
        // What a boot killed mid-copy leaves: a.txt complete (its times set), sub/b.txt half written.
        Directory.CreateDirectory(Path.Join(Staged, "sub"));
        ChildProcess.MustSucceed("cp", "-a", Path.Join(Home, "a.txt"), Path.Join(Staged, "a.txt"));
        File.WriteAllText(Path.Join(Staged, "sub/b.txt"), "br");

        var (outcome, observer) = Seed();

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.True(Assert.Single(observer.Plans).Resuming);
        Assert.Equal(1, outcome.Report!.ResumedFiles);
        Assert.Empty(TreeSnapshot.Take(Persisted).DifferencesFrom(TreeSnapshot.Take(Home)));
    }

    [Fact]
    public void An_existing_unmarked_home_receives_only_what_it_lacks()
    {
        HomeFixture.Write(Home, ".bashrc", "image");
        HomeFixture.Write(Home, ".config/a", "image a");
        HomeFixture.Write(Home, ".config/b", "image b");
        HomeFixture.Write(Persisted, ".bashrc", "user");
        HomeFixture.Write(Persisted, ".config/a", "user a");

        var (outcome, observer) = Seed();

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.True(Assert.Single(observer.Plans).Merging);
        Assert.Equal("user", File.ReadAllText(Path.Join(Persisted, ".bashrc")));
        Assert.Equal("user a", File.ReadAllText(Path.Join(Persisted, ".config/a")));
        Assert.Equal("image b", File.ReadAllText(Path.Join(Persisted, ".config/b")));
        Assert.False(Directory.Exists(Staged));
    }

    [Fact]
    public void A_long_copy_reports_progress_at_a_steady_interval()
    {
        for (int i = 0; i < 40; i++)
        {
            HomeFixture.Write(Home, $"f{i:D2}", "payload");
        }

        var posix = new FaultyPosix { BeforeCopy = () => Thread.Sleep(40) };

        var (outcome, observer) = Seed(posix, progressEvery: TimeSpan.FromMilliseconds(50));

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.True(observer.Reports.Count >= 2, $"{observer.Reports.Count} progress reports");
        Assert.Equal(40, observer.Totals.Single().Entries);
        Assert.True(observer.Reports.Zip(observer.Reports.Skip(1)).All(pair => pair.First <= pair.Second), "progress went backwards");
    }

    [Fact]
    public void A_home_containing_the_workspace_is_copied_without_the_workspace()
    {
        string workspaceInside = Path.Join(Home, "ws");
        Directory.CreateDirectory(workspaceInside);
        HomeFixture.Write(Home, "keep.txt", "x");
        var observer = new RecordingObserver();
        using var workspace = DirectoryHandle.Open(PosixSystem.Instance, workspaceInside);
        using var source = DirectoryHandle.Open(PosixSystem.Instance, Home);

        var outcome = new HomeSeeder(PosixSystem.Instance, new CopyOptions(), TimeSpan.FromMinutes(1)).Seed(workspace, source, null, observer);

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.Equal(1, outcome.Report!.ExcludedDirectories);
        Assert.True(File.Exists(Path.Join(workspaceInside, "home", "keep.txt")));
        Assert.False(Directory.Exists(Path.Join(workspaceInside, "home", "ws")));
    }

    private sealed class RecordingObserver : ISeedObserver
    {
        public List<SeedPlan> Plans { get; } = [];

        public List<long> Reports { get; } = [];

        public List<TreeSize> Totals { get; } = [];

        public List<CopyProblem> Problems { get; } = [];

        public void Planned(SeedPlan plan) => Plans.Add(plan);

        public void Progress(CopyReport report, TreeSize total)
        {
            lock (Reports)
            {
                Reports.Add(report.Entries);
                if (Totals.Count == 0)
                {
                    Totals.Add(total);
                }
            }
        }

        public void Problem(CopyProblem problem)
        {
            lock (Problems)
            {
                Problems.Add(problem);
            }
        }
    }
}
