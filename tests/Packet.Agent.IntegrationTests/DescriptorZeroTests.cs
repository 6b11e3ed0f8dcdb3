using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Mono.Unix.Native;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Steps;
using Packet.Agent.Workspace;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Descriptor 0 belongs to the whole test process: these tests run alone.</summary>
[CollectionDefinition(nameof(DescriptorZeroCollection), DisableParallelization = true)]
public sealed class DescriptorZeroCollection;

/// <summary>
/// An agent started with standard input closed (<c>packet-agent boot &lt;&amp;-</c>, or a runtime
/// that gives the container none) gets descriptor 0 from its next open: the kernel hands out the
/// lowest free number, and 0 is as valid as any. Code that takes 0 for a failure (<c>fd &gt; 0</c>)
/// would skip or misreport whatever that open was for. Each test frees 0 just before one open, then
/// the next, and so on through every open of the operation, and holds each result to the plain run.
/// </summary>
[Collection(nameof(DescriptorZeroCollection))]
public sealed class DescriptorZeroTests : IDisposable
{
    private readonly TempDirectory _dir = new("descriptor-zero");

    public void Dispose() => _dir.Dispose();

    /// <summary>Runs <paramref name="operation"/> with descriptor 0 freed before its <paramref name="openNumber"/>-th open (from 1), standard input put back after.</summary>
    private static T WithZeroFreedAt<T>(int openNumber, Func<FaultyPosix, T> operation)
    {
        int standardInput = Syscall.dup(0);
        HomeFixture.Check(standardInput);
        int opens = 0;
        var posix = new FaultyPosix
        {
            BeforeOpen = _ =>
            {
                if (++opens == openNumber)
                {
                    HomeFixture.Check(Syscall.close(0));
                }
            },
        };
        try
        {
            return operation(posix);
        }
        finally
        {
            // Whatever holds 0 now was opened by the operation and never closed: a leak, named.
            string? leaked = Syscall.fcntl(0, FcntlCommand.F_GETFD) >= 0 && opens >= openNumber ? new FileInfo("/proc/self/fd/0").LinkTarget : null;
            HomeFixture.Check(Syscall.dup2(standardInput, 0));
            HomeFixture.Check(Syscall.close(standardInput));
            Assert.True(leaked is null, $"descriptor 0 was left open on {leaked} (freed before open {openNumber})");
            Assert.True(opens >= openNumber, $"only {opens} opens this time: descriptor 0 was never freed for open {openNumber}");
        }
    }

    /// <summary>
    /// Counts the opens of <paramref name="operation"/> (fewer than <paramref name="minimumOpens"/>: the
    /// fixture no longer exercises <paramref name="what"/>), then runs it once per open with descriptor 0
    /// freed before that open, and hands each result to <paramref name="check"/> with the open's number.
    /// </summary>
    private static void ForEachOpen<T>(Func<FaultyPosix, T> operation, int minimumOpens, string what, Action<int, T> check)
    {
        int opens = 0;
        operation(new FaultyPosix { BeforeOpen = _ => opens++ });
        Assert.True(opens >= minimumOpens, $"only {opens} opens: the fixture no longer exercises {what}");
        for (int openNumber = 1; openNumber <= opens; openNumber++)
        {
            check(openNumber, WithZeroFreedAt(openNumber, operation));
        }
    }

    /// <summary>Runs <paramref name="use"/> on a descriptor of <paramref name="directory"/>, closed after.</summary>
    private static T InDirectory<T>(string directory, Func<int, T> use)
    {
        int fd = CopyHarness.Open(directory);
        try
        {
            return use(fd);
        }
        finally
        {
            Syscall.close(fd);
        }
    }

    [Fact]
    public void A_copy_into_an_existing_home_is_the_same_whichever_open_gets_descriptor_0()
    {
        string home = _dir["home"];
        HomeFixture.Build(home, rootOnlyEntries: false);
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, ".bashrc", "the user's own");
        HomeFixture.Write(existing, ".config/mine", "the user's own");
        HomeFixture.Write(existing, "data/sub/other", "the user's own");
        int run = 0;
        (TreeSnapshot Tree, string Counts) Copy(FaultyPosix posix)
        {
            string destination = _dir[$"copy-{run++}"];
            var report = CopyHarness.Copy(home, destination, posix, existing, workers: 0);
            return (TreeSnapshot.Take(destination), $"kept {report.KeptExisting}, links {report.HardLinks}, symlinks {report.Symlinks}, fifos {report.Fifos}, unreadable {report.SkippedUnreadable}, failure {report.FatalError}");
        }

        // Folders the user's home already has are made in staging at copy time: their times differ run to run.
        var timesOfNow = new[] { "", ".config", "data", "data/sub" };
        IReadOnlyList<string> Differences(TreeSnapshot tree, TreeSnapshot other) =>
        [
            .. tree.DifferencesFrom(other, include: path => !timesOfNow.Contains(path)),
            .. tree.DifferencesFrom(other, Ignore.AccessTimes | Ignore.RootTimes, path => timesOfNow.Contains(path)).Where(d => !d.Contains(": mtime ", StringComparison.Ordinal)),
        ];

        var plain = Copy(new FaultyPosix());
        ForEachOpen(Copy, minimumOpens: 41, "the walk", (openNumber, freed) =>
        {
            Assert.True(plain.Counts == freed.Counts, $"descriptor 0 freed before open {openNumber}: {freed.Counts}, not {plain.Counts}");
            var differences = Differences(freed.Tree, plain.Tree);
            Assert.True(differences.Count == 0, $"descriptor 0 freed before open {openNumber}: {string.Join("; ", differences)}");
        });
    }

    [Fact]
    public void The_scan_before_a_copy_counts_the_same_whichever_open_gets_descriptor_0()
    {
        string home = _dir["home"];
        HomeFixture.Build(home, rootOnlyEntries: false);
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, ".config/mine", "the user's own");
        HomeFixture.Write(existing, "data/first", "the user's own");
        TreeSize Scan(FaultyPosix posix) =>
            InDirectory(home, source => InDirectory(existing, existingFd => new TreeScanner(posix).Scan(source, existingFd, excluded: null)));

        var plain = Scan(new FaultyPosix());
        ForEachOpen(Scan, minimumOpens: 11, "folders to enter", (openNumber, freed) => Assert.Equal((openNumber, plain), (openNumber, freed)));

        Assert.Empty(OpenDescriptors.Under(home));
        Assert.Empty(OpenDescriptors.Under(existing));
    }

    [Fact]
    public void The_volume_probe_finds_a_local_volume_whole_whichever_open_gets_descriptor_0()
    {
        string volume = _dir.Create("volume");
        VolumeTraits Probe(FaultyPosix posix) => InDirectory(volume, fd => VolumeProbe.Probe(posix, fd, owners: Platform.IsRoot));

        ForEachOpen(Probe, minimumOpens: 4, "the probe's directory rename", (openNumber, freed) =>
        {
            Assert.Equal((openNumber, VolumeTraits.Full), (openNumber, freed));
            Assert.Empty(Directory.GetFileSystemEntries(volume));
        });
    }

    [Fact]
    public void A_first_seed_and_an_image_upgrade_do_the_same_whichever_open_gets_descriptor_0()
    {
        string image = _dir.Create("image-home");
        HomeFixture.Write(image, ".bashrc", "v1 bashrc\n");
        HomeFixture.Write(image, ".config/tool.conf", "v1 conf\n");
        HomeFixture.Write(image, ".config/gone.conf", "v1 only\n");
        HomeFixture.Write(image, "notes.txt", "unchanged\n");
        HomeFixture.FixTimes(image);
        int run = 0;
        (string Summary, TreeSnapshot Home) Seed(string workspace, string version, FaultyPosix posix)
        {
            var options = new BootOptions { Workspace = workspace, Home = image, NvidiaSmi = "x", TerminationLog = _dir["termination-log"], ImageVersion = version };
            var step = new SeedHomeStep(posix, NullLogger.Instance, new CopyOptions { PreserveOwnership = Platform.IsRoot, Workers = 0 }, TimeSpan.FromMinutes(1), TimeProvider.System);
            using var workspaceHandle = DirectoryHandle.Open(new FaultyPosix(), workspace);
            var (result, home) = Steps.Run(step, workspaceHandle, options);
            using (home.Lock)
            {
                if (home.Copied is not null)
                {
                    File.WriteAllText(Path.Join(workspace, "home/.packet-init"), string.Empty); // the marker step's job
                }
            }

            Assert.Equal([workspace], OpenDescriptors.Under(_dir.Path));
            // Durations and speeds differ run to run; every count stays.
            string summary = Regex.Replace(result.Summary, @"[0-9.]+ (s\b|[KMG]?i?B/s)", "#");
            return ($"{result.Outcome}: {summary}", TreeSnapshot.Take(Path.Join(workspace, "home")));
        }

        string FirstSeed(FaultyPosix posix, out (string Summary, TreeSnapshot Home) seeded)
        {
            string workspace = _dir.Create($"workspace-{run++}");
            seeded = Seed(workspace, "v1", posix);
            return workspace;
        }

        (string Summary, TreeSnapshot Home) Upgrade(FaultyPosix posix)
        {
            string workspace = FirstSeed(new FaultyPosix(), out _);
            HomeFixture.Write(workspace, "home/.bashrc", "the user's bashrc\n");
            File.SetLastWriteTimeUtc(Path.Join(workspace, "home/.bashrc"), new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
            HomeFixture.Write(image, ".bashrc", "v2 bashrc\n");
            HomeFixture.Write(image, ".config/tool.conf", "v2 conf\n");
            File.Delete(Path.Join(image, ".config/gone.conf"));
            HomeFixture.Write(image, "newdir/inner.txt", "new in v2\n");
            HomeFixture.FixTimes(image);
            try
            {
                return Seed(workspace, "v2", posix);
            }
            finally
            {
                HomeFixture.Write(image, ".bashrc", "v1 bashrc\n");
                HomeFixture.Write(image, ".config/tool.conf", "v1 conf\n");
                HomeFixture.Write(image, ".config/gone.conf", "v1 only\n");
                Directory.Delete(Path.Join(image, "newdir"), recursive: true);
                HomeFixture.FixTimes(image);
            }
        }

        foreach (var (what, operation) in new (string, Func<FaultyPosix, (string, TreeSnapshot)>)[]
        {
            ("first seed", posix => { FirstSeed(posix, out var seeded); return seeded; }),
            ("upgrade", Upgrade),
        })
        {
            var (plainSummary, plainHome) = operation(new FaultyPosix());
            Assert.StartsWith("Ok", plainSummary, StringComparison.Ordinal);
            ForEachOpen(operation, minimumOpens: 1, what, (openNumber, freed) =>
            {
                var (summary, home) = freed;
                Assert.True(plainSummary == summary, $"{what}, descriptor 0 freed before open {openNumber}: {summary}, not {plainSummary}");
                var differences = home.DifferencesFrom(plainHome, Ignore.AccessTimes | Ignore.RootTimes, path => !path.StartsWith(".packet", StringComparison.Ordinal) && path != ".config");
                Assert.True(differences.Count == 0, $"{what}, descriptor 0 freed before open {openNumber}: {string.Join("; ", differences)}");
            });
        }
    }
}
