using System.Diagnostics;
using System.Text.RegularExpressions;
using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>The home every volume test seeds: the fixture's odd cases, a few hundred small files, a model.</summary>
public sealed class VolumeHome : IDisposable
{
    private readonly TempDirectory _dir = new("volume-home");

    public VolumeHome()
    {
        Path = _dir.Create("home");
        HomeFixture.Build(Path, rootOnlyEntries: Platform.IsRoot);
        for (int d = 0; d < 20; d++)
        {
            for (int f = 0; f < 20; f++)
            {
                HomeFixture.Write(Path, $"lib/pkg{d:D2}/module{f:D2}.py", $"# module {d}.{f}\n" + new string('x', 100 * (f + 1)));
            }
        }

        // Big enough that a kill a few milliseconds into the seed lands mid-copy even on tmpfs.
        HomeFixture.WriteBytes(Path, ".cache/model.bin", HomeFixture.RandomBytes(48 << 20, 11));
        HomeFixture.FixTimes(Path);
        Snapshot = TreeSnapshot.Take(Path);
    }

    public string Path { get; }

    public TreeSnapshot Snapshot { get; }

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// The seed on every volume this machine can mount for real: loop-mounted ext4, xfs and btrfs,
/// tmpfs, and FUSE volumes from Debian (bindfs refuses rename flags as NFS does; fusefat and
/// exfat-fuse hold no owners, modes, symlinks, FIFOs or hard links). On each, the home must be as
/// complete as <c>cp -a</c> makes it on the same volume, marked, with one PATH block; a second boot
/// does nothing; a boot killed mid-seed is completed by the next.
/// </summary>
public sealed partial class VolumeTests(VolumeHome home) : IClassFixture<VolumeHome>
{
    private const string Marker = ".packet-init";

    public static TheoryData<VolumeKind> Kinds => new(Enum.GetValues<VolumeKind>());

    [RootTheory]
    [MemberData(nameof(Kinds))]
    public void The_first_boot_seeds_a_home_as_complete_as_cp_a_and_the_second_does_nothing(VolumeKind kind)
    {
        Require.Root();
        using var volume = new TestVolume(kind);
        string workspace = volume.Create("workspace");

        var first = Boot(workspace);
        var second = Boot(workspace);

        Assert.True(first.ExitCode == 0, first.ToString());
        string persisted = Path.Join(workspace, "home");
        Assert.True(File.Exists(Path.Join(persisted, Marker)), first.ToString());
        Assert.Single(File.ReadAllLines(Path.Join(persisted, ".bashrc")), line => line == "# >>> packet-persist >>>");
        Assert.False(Directory.Exists(Path.Join(workspace, ".packet", "staging")), "staging/ exists only while a seed is unfinished");
        AssertAsCompleteAsCpA(volume, persisted);

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains(second.ErrorLines, line => line.Contains("info: seed[2] skipped: already seeded", StringComparison.Ordinal));
        Assert.Contains("warnings: 0", second.ErrorLines[^1], StringComparison.Ordinal);
    }

    [RootTheory]
    [MemberData(nameof(Kinds))]
    public void A_boot_killed_mid_seed_is_completed_by_the_next_one(VolumeKind kind)
    {
        Require.Root();
        using var volume = new TestVolume(kind);
        int killedMidCopy = 0;
        foreach (int delay in new[] { 0, 30, 120 })
        {
            string workspace = volume.Create($"workspace-{delay}");
            KillDuringSeed(workspace, TimeSpan.FromMilliseconds(delay));
            string persisted = Path.Join(workspace, "home");
            if (!File.Exists(Path.Join(persisted, Marker)) && UnfinishedCopy(workspace))
            {
                killedMidCopy++;
            }

            var next = Boot(workspace);

            Assert.True(next.ExitCode == 0, next.ToString());
            Assert.True(File.Exists(Path.Join(persisted, Marker)), next.ToString());
            Assert.Single(File.ReadAllLines(Path.Join(persisted, ".bashrc")), line => line == "# >>> packet-persist >>>");
            AssertAsCompleteAsCpA(volume, persisted);
        }

        Assert.True(killedMidCopy >= 1, $"no kill landed during the copy on {kind}: the home is too small to test this");
    }

    [RootFact]
    public void The_losses_of_a_FAT_volume_are_counted_by_kind_recorded_and_shown_by_status()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Vfat);
        string workspace = volume.Create("workspace");

        var boot = Boot(workspace);
        var status = Agent.Run(["status", "--workspace", workspace, "--home", home.Path]);

        Assert.True(boot.ExitCode == 0, boot.ToString());
        foreach (string what in new[] { "owners of", "modes of", "symlinks left out", "FIFO left out", "hard links copied as separate files", "names the volume cannot hold" })
        {
            Assert.Single(boot.ErrorLines, line => line.Contains("warn: seed[2] not preserved on this volume: ", StringComparison.Ordinal) && line.Contains(what, StringComparison.Ordinal));
        }

        Assert.Contains("warnings: 1; guard ok, seed warning, marker ok, profile ok", boot.ErrorLines[^1], StringComparison.Ordinal);
        string marker = File.ReadAllText(Path.Join(workspace, "home", Marker));
        Assert.Contains("\"not_preserved\":{", marker, StringComparison.Ordinal);
        Assert.Contains("\"symlinks\":{\"count\":5", marker, StringComparison.Ordinal);
        Assert.Contains("\"not_preserved\":{", File.ReadAllText(Path.Join(workspace, ".packet", "last-boot.json")), StringComparison.Ordinal);
        Assert.Contains("had 1 warning", File.ReadAllText(Path.Join(workspace, ".packet", "last-boot.warnings")), StringComparison.Ordinal);
        Assert.Contains(status.StandardOutput.Split('\n'), line => line.StartsWith("not kept   owners: ", StringComparison.Ordinal) && line.Contains("symlinks: 5 (e.g. links/", StringComparison.Ordinal));
        Assert.Contains("the volume did not keep all of the home when it was seeded", status.StandardOutput, StringComparison.Ordinal);
    }

    [RootFact]
    public void A_volume_out_of_inodes_is_named_as_one_and_nothing_is_copied()
    {
        Require.Root();
        using var volume = new TestVolume(VolumeKind.Ext4, size: "64M", mkfsOptions: "-N 64");
        string workspace = volume.Create("workspace");

        var boot = Boot(workspace);

        Assert.True(boot.ExitCode == 0, boot.ToString());
        var warning = Assert.Single(boot.ErrorLines, line => line.Contains("warn: seed[2]", StringComparison.Ordinal));
        Assert.Matches(@"the home needs [\d,]+ inodes but .* has \d+ free \(its blocks would suffice: [\d.]+ MiB free\)", warning);
        Assert.False(Directory.Exists(Path.Join(workspace, "home")));
        Assert.False(Directory.Exists(Path.Join(workspace, ".packet", "staging", "home")));
    }

    private ChildResult Boot(string workspace) =>
        Agent.Run(["boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off", "--link-home", "off"], timeout: TimeSpan.FromMinutes(2));

    /// <summary>A staged copy, or one made in place (on volumes that cannot move a directory whole).</summary>
    private static bool UnfinishedCopy(string workspace) =>
        Directory.Exists(Path.Join(workspace, ".packet", "staging", "home")) || File.Exists(Path.Join(workspace, ".packet", "staging", "home-in-place"));

    /// <summary>Starts a boot, waits until its copy has begun (the unfinished copy is on the volume), lets it run a while, and kills it with SIGKILL.</summary>
    private void KillDuringSeed(string workspace, TimeSpan after)
    {
        var startInfo = new ProcessStartInfo(RepositoryPaths.AgentBinary) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in new[] { "boot", "--workspace", workspace, "--home", home.Path, "--gpu", "off", "--link-home", "off" })
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var agent = Process.Start(startInfo)!;
        agent.BeginErrorReadLine();
        agent.BeginOutputReadLine();
        var waited = Stopwatch.StartNew();
        while (!UnfinishedCopy(workspace) && !agent.HasExited)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "the seed did not start");
            Thread.Sleep(1);
        }

        Thread.Sleep(after);
        Syscall.kill(agent.Id, Signum.SIGKILL);
        agent.WaitForExit();
    }

    /// <summary>
    /// The agent's home against cp -a's copy of the same home on the same volume (so both meet the
    /// same rounding and refusals). The agent may lack what it skips on purpose (sockets, devices),
    /// and what cp -a turned into something else (a FIFO it made a regular file, on FAT); it may have
    /// more where cp -a failed (a hard link, which it copies as a separate file). Where an entry
    /// differs, the agent's must be the one equal to the source (cp -a truncates a sparse file on
    /// exfat-fuse, say). All else is equal.
    /// </summary>
    private void AssertAsCompleteAsCpA(TestVolume volume, string persisted)
    {
        string reference = volume.Create($"cp-a-{Guid.NewGuid():N}");
        string source = home.Path;
        using var utf8Only = new TempDirectory("utf8-only-home");
        if (volume.IsFatLike)
        {
            // exfat-fuse accepts a name holding an encoded surrogate, then dies listing its directory:
            // cp -a there takes the volume away. The reference leaves names that are not UTF-8 out, as the agent does.
            source = utf8Only.Create("home");
            ChildProcess.MustSucceed("cp", "-a", home.Path + "/.", source);
            foreach (string name in new[] { HomeFixture.NonUtf8Name, HomeFixture.SurrogateName })
            {
                Syscall.unlink(Path.Join(source, name));
            }
        }

        ChildProcess.Run("cp", ["-a", source + "/.", reference], timeout: TimeSpan.FromMinutes(2)); // it fails on what the volume refuses, as expected
        var agent = TreeSnapshot.Take(persisted);
        var cpA = TreeSnapshot.Take(reference);
        var original = home.Snapshot;

        var agentOffSource = agent.DifferencesFrom(original, Ignore.AccessTimes | Ignore.RootTimes)
            .Where(difference => !WithinRounding(difference))
            .Select(Field)
            .ToHashSet(StringComparer.Ordinal);
        var unexpected = agent.DifferencesFrom(cpA, Ignore.AccessTimes | Ignore.RootTimes, path => path is not (Marker or ".bashrc"))
            .Where(difference => !Explained(difference, cpA, original) && agentOffSource.Contains(Field(difference)))
            .ToList();

        Assert.True(unexpected.Count == 0, $"on {volume.Kind}, the agent's home differs from cp -a's:\n{string.Join('\n', unexpected)}");
        TempDirectory.Remove(reference);
    }

    private static bool Explained(string difference, TreeSnapshot cpA, TreeSnapshot source)
    {
        if (difference.StartsWith("only in the other tree: ", StringComparison.Ordinal))
        {
            var original = source.Entries.GetValueOrDefault(Unshow(difference["only in the other tree: ".Length..]));
            var copied = cpA.Entries.GetValueOrDefault(Unshow(difference["only in the other tree: ".Length..]));
            return original is not null && copied is not null
                && (original.Type is FilePermissions.S_IFSOCK or FilePermissions.S_IFCHR or FilePermissions.S_IFBLK
                    || (original.Type == FilePermissions.S_IFIFO && copied.Type != FilePermissions.S_IFIFO));
        }

        if (difference.StartsWith("only in this tree: ", StringComparison.Ordinal))
        {
            var original = source.Entries.GetValueOrDefault(Unshow(difference["only in this tree: ".Length..]));
            return original is { Type: FilePermissions.S_IFREG, Links: > 1 };
        }

        return false;
    }

    /// <summary>An mtime the volume kept to its own resolution (FAT: 2 s, exfat: 10 ms): not a difference of the copy's making.</summary>
    private static bool WithinRounding(string difference)
    {
        var times = MtimePattern().Match(difference);
        return times.Success && Math.Abs(decimal.Parse(times.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - decimal.Parse(times.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)) < 2;
    }

    [GeneratedRegex(@": mtime ([\d.]+) != ([\d.]+)$")]
    private static partial Regex MtimePattern();

    /// <summary>"path: field" of a difference line ("path: field x != y"), or the whole line for an entry only one tree has.</summary>
    private static string Field(string difference) =>
        FieldPattern().Match(difference) is { Success: true } match ? match.Groups[1].Value : difference;

    [GeneratedRegex("^(.*: (?:type|mode|owner|mtime|atime|size|link target|content|sparse|xattrs|hard link group)) .* != ", RegexOptions.Singleline)]
    private static partial Regex FieldPattern();

    private static string Unshow(string shown) => shown.Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\0", "\0", StringComparison.Ordinal);
}
