using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Home;
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
        posix ??= new FaultyPosix();
        var observer = new RecordingObserver();
        using var workspace = DirectoryHandle.Open(posix, Workspace);
        using var source = DirectoryHandle.Open(posix, Home);
        var seeder = new HomeSeeder(posix, new CopyOptions { PreserveOwnership = Platform.IsRoot }, progressEvery ?? TimeSpan.FromMinutes(5));
        var outcome = seeder.Seed(workspace, source, null, observer);
        Assert.Equal([workspace.Path, source.Path], OpenDescriptors.Under(_dir.Path).Order(StringComparer.Ordinal).Reverse());
        return (outcome, observer);
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
        using var workspace = DirectoryHandle.Open(new FaultyPosix(), workspaceInside);
        using var source = DirectoryHandle.Open(new FaultyPosix(), Home);

        var outcome = new HomeSeeder(new FaultyPosix(), new CopyOptions(), TimeSpan.FromMinutes(1)).Seed(workspace, source, null, observer);

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.Equal(1, outcome.Report!.ExcludedDirectories);
        Assert.True(File.Exists(Path.Join(workspaceInside, "home", "keep.txt")));
        Assert.False(Directory.Exists(Path.Join(workspaceInside, "home", "ws")));
    }

    [Fact]
    public void The_survey_counts_inodes_where_the_volume_has_a_limit_and_none_where_it_has_not()
    {
        HomeFixture.Write(Home, "a", "x");
        using var workspace = DirectoryHandle.Open(new FaultyPosix(), Workspace);
        using var source = DirectoryHandle.Open(new FaultyPosix(), Home);

        var limited = new HomeSeeder(new FaultyPosix { Inodes = (1000, 17) }, new CopyOptions(), TimeSpan.FromMinutes(1)).Survey(workspace, source);
        var unlimited = new HomeSeeder(new FaultyPosix { Inodes = (0, 0) }, new CopyOptions(), TimeSpan.FromMinutes(1)).Survey(workspace, source);

        Assert.Equal(17, limited.FreeInodes);
        Assert.Null(unlimited.FreeInodes);
        Assert.Equal(new TreeSize(1, 1, limited.ToCopy.AllocatedBytes), limited.ToCopy);
    }

    [Fact]
    public void A_home_that_needs_more_inodes_than_the_volume_has_is_not_copied()
    {
        for (int i = 0; i < 10; i++)
        {
            HomeFixture.Write(Home, $"f{i}", "x");
        }

        var (outcome, _) = Seed(new FaultyPosix { Inodes = (1000, 11) });

        Assert.False(outcome.Complete);
        Assert.StartsWith("the home needs 12 inodes but ", outcome.Problem, StringComparison.Ordinal);
        Assert.Contains(" has 11 free (its blocks would suffice: ", outcome.Problem, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Persisted));
        Assert.False(Directory.Exists(Staged));
    }

    [Theory]
    [InlineData(10, 0, 12, false)]
    [InlineData(10, 0, 11, true)]
    [InlineData(10, 3, 9, false)]
    [InlineData(10, 3, 8, true)]
    public void Each_entry_takes_an_inode_but_a_hard_links_second_name_and_staging_takes_two(long entries, long extraLinks, long freeInodes, bool obstacle)
    {
        var plan = new SeedPlan(false, false, new TreeSize(entries, 0, 0, extraLinks), FreeBytes: 1 << 30, FreeInodes: freeInodes);

        Assert.Equal(obstacle, HomeSeeder.Obstacle(plan, "/workspace") is not null);
    }

    [Fact]
    public void A_home_exactly_as_large_as_the_free_space_fits_and_a_resumed_copy_is_never_refused()
    {
        var exact = new SeedPlan(false, false, new TreeSize(1, 4096, 4096), FreeBytes: 4096, FreeInodes: null);
        var over = exact with { FreeBytes = 4095 };

        Assert.Null(HomeSeeder.Obstacle(exact, "/workspace"));
        Assert.NotNull(HomeSeeder.Obstacle(over, "/workspace"));
        Assert.Null(HomeSeeder.Obstacle(over with { Resuming = true, FreeInodes = 0 }, "/workspace"));
    }

    [Fact]
    public void A_merge_surveys_only_what_the_existing_home_lacks()
    {
        HomeFixture.Write(Home, "have", "image");
        HomeFixture.Write(Home, "lack", "image");
        HomeFixture.Write(Persisted, "have", "user");
        using var workspace = DirectoryHandle.Open(new FaultyPosix(), Workspace);
        using var source = DirectoryHandle.Open(new FaultyPosix(), Home);

        var plan = new HomeSeeder(new FaultyPosix(), new CopyOptions(), TimeSpan.FromMinutes(1)).Survey(workspace, source);

        Assert.True(plan.Merging);
        Assert.False(plan.Resuming);
        Assert.False(plan.InPlace);
        Assert.Equal(1, plan.ToCopy.Entries);
    }

    [Fact]
    public void A_syncfs_that_fails_leaves_the_copy_staged_and_unpublished()
    {
        HomeFixture.Write(Home, "a", "x");

        var failure = Assert.Throws<PosixException>(() => Seed(new FaultyPosix((call, _) => call == "syncfs" ? Errno.EIO : null)));

        Assert.Contains("syncfs", failure.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Persisted));
        Assert.True(File.Exists(Path.Join(Staged, "a")));
    }

    [RootFact]
    public void On_fusefat_the_home_is_copied_in_place_with_a_note_that_a_killed_boot_resumes_from()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat, size: "64M");
        HomeFixture.Write(Home, ".bashrc", "image");
        HomeFixture.Write(Home, ".config/tool/a", "alpha");
        var posix = new FaultyPosix { BeforeCopy = () => File.WriteAllText(_dir["copying"], File.Exists(Path.Join(volume.Path, ".packet/staging/home-in-place")) ? "noted" : "not noted") };

        var (outcome, observer) = SeedInto(volume.Path, posix);

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.Equal("noted", File.ReadAllText(_dir["copying"]));
        Assert.Equal("alpha", File.ReadAllText(Path.Join(volume.Path, "home/.config/tool/a")));
        Assert.False(Directory.Exists(Path.Join(volume.Path, ".packet/staging")));
        Assert.False(Assert.Single(observer.Plans).Merging);
    }

    [RootFact]
    public void On_fusefat_an_in_place_copy_left_by_a_killed_boot_is_resumed_not_merged()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat, size: "64M");
        HomeFixture.Write(Home, "a", "alpha");
        HomeFixture.Write(Home, "b", "bravo");
        HomeFixture.Write(volume.Path, "home/a", "al");
        HomeFixture.Write(volume.Path, ".packet/staging/home-in-place", string.Empty);

        var (outcome, observer) = SeedInto(volume.Path, new FaultyPosix());

        Assert.True(outcome.Complete, outcome.Problem);
        var plan = Assert.Single(observer.Plans);
        Assert.True(plan.InPlace);
        Assert.True(plan.Resuming);
        Assert.False(plan.Merging);
        Assert.Equal(2, plan.ToCopy.Entries);
        Assert.Equal("alpha", File.ReadAllText(Path.Join(volume.Path, "home/a")));
        Assert.False(File.Exists(Path.Join(volume.Path, ".packet/staging/home-in-place")));
    }

    [RootFact]
    public void On_fusefat_an_in_place_copy_that_fills_the_volume_is_removed_with_its_note()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat, size: "64M");
        for (int i = 0; i < 20; i++)
        {
            HomeFixture.Write(Home, $"f{i}", "data");
        }

        int copies = 0;
        var posix = new FaultyPosix((call, _) => call is "copy_file_range" or "sendfile" or "pwrite" or "write" && Interlocked.Increment(ref copies) > 5 ? Errno.ENOSPC : null);

        var (outcome, _) = SeedInto(volume.Path, posix);

        Assert.False(outcome.Complete);
        Assert.Contains("No space left on device (ENOSPC)", outcome.Problem, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Join(volume.Path, "home")));
        Assert.False(File.Exists(Path.Join(volume.Path, ".packet/staging/home-in-place")));
    }

    [RootFact]
    public void On_fusefat_a_merge_makes_missing_directories_in_the_home_and_fills_them_entry_by_entry()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat, size: "64M");
        HomeFixture.Write(Home, ".bashrc", "image");
        HomeFixture.Write(Home, ".config/tool/a", "alpha");
        HomeFixture.Write(Home, ".config/b", "bravo");
        HomeFixture.Write(Home, "keep/c", "charlie");
        HomeFixture.Write(volume.Path, "home/.bashrc", "user");
        HomeFixture.Write(volume.Path, "home/keep/c", "user's c");
        HomeFixture.FixTimes(Home);

        var (outcome, observer) = SeedInto(volume.Path, new FaultyPosix());

        Assert.True(outcome.Complete, outcome.Problem);
        Assert.True(Assert.Single(observer.Plans).Merging);
        Assert.Equal("user", File.ReadAllText(Path.Join(volume.Path, "home/.bashrc")));
        Assert.Equal("user's c", File.ReadAllText(Path.Join(volume.Path, "home/keep/c")));
        Assert.Equal("alpha", File.ReadAllText(Path.Join(volume.Path, "home/.config/tool/a")));
        Assert.Equal("bravo", File.ReadAllText(Path.Join(volume.Path, "home/.config/b")));
        // The directory made in the home takes the staged one's time (FAT keeps it to 2 s), not the time it was filled.
        var made = Directory.GetLastWriteTimeUtc(Path.Join(volume.Path, "home/.config/tool")) - Directory.GetLastWriteTimeUtc(Path.Join(Home, ".config/tool"));
        Assert.True(made.Duration() <= TimeSpan.FromSeconds(2), $"{made} off the image's time");
        Assert.False(Directory.Exists(Path.Join(volume.Path, ".packet/staging")));
    }

    private (SeedOutcome Outcome, RecordingObserver Observer) SeedInto(string workspacePath, IPosix posix)
    {
        var observer = new RecordingObserver();
        using var workspace = DirectoryHandle.Open(posix, workspacePath);
        using var source = DirectoryHandle.Open(posix, Home);
        var seeder = new HomeSeeder(posix, new CopyOptions { PreserveOwnership = false }, TimeSpan.FromMinutes(5));
        var outcome = seeder.Seed(workspace, source, null, observer);
        Assert.Equal([source.Path], OpenDescriptors.Under(_dir.Path));
        Assert.Equal([workspace.Path], OpenDescriptors.Under(workspacePath));
        return (outcome, observer);
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
