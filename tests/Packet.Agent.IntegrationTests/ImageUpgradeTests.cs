using Microsoft.Extensions.Logging.Abstractions;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Image upgrades as dpkg treats conffiles, on a real file system.</summary>
public sealed class ImageUpgradeTests : IDisposable
{
    private readonly TempDirectory _dir = new("upgrade");

    public ImageUpgradeTests()
    {
        Image = _dir.Create("image-home");
        Workspace = _dir.Create("workspace");
    }

    private string Image { get; }

    private string Workspace { get; }

    private string Home => Path.Join(Workspace, "home");

    public void Dispose() => _dir.Dispose();

    private StepResult Seed(string imageVersion, IPosix? posix = null, bool marked = false, bool dryRun = false)
    {
        var options = new BootOptions { Workspace = Workspace, Home = Image, NvidiaSmi = "x", TerminationLog = _dir["termination-log"], ImageVersion = imageVersion, DryRun = dryRun };
        var changes = new ChangeLog();
        var recording = new RecordingPosix(changes, posix);
        var step = new SeedHomeStep(recording, NullLogger.Instance, new CopyOptions { PreserveOwnership = Platform.IsRoot }, TimeSpan.FromMinutes(1), TimeProvider.System);
        using var workspace = DirectoryHandle.Open(recording, Workspace);
        var (result, home) = Steps.Run(step, workspace, options, recorded: changes);
        using (home.Lock)
        {
            if (!marked && home.Copied is not null)
            {
                File.WriteAllText(Path.Join(Home, ".packet-init"), string.Empty); // the marker step's job
            }
        }

        Assert.Equal([Workspace], OpenDescriptors.Under(_dir.Path));
        return result;
    }

    private static void Write(string root, string relative, string content)
    {
        HomeFixture.Write(root, relative, content);
        File.SetLastWriteTimeUtc(Path.Join(root, relative), DateTime.UtcNow.AddMinutes(Random.Shared.Next(1, 1000)));
    }

    [Fact]
    public void A_new_image_is_brought_in_without_losing_or_overwriting_anything_of_the_users()
    {
        Write(Image, ".bashrc", "v1 bashrc\n");
        Write(Image, ".profile", "v1 profile\n");
        Write(Image, ".config/tool.conf", "v1 conf\n");
        Write(Image, "notes.txt", "unchanged\n");
        Assert.Equal(StepOutcome.Ok, Seed("v1").Outcome);
        // The user edits one file and deletes another.
        File.WriteAllText(Path.Join(Home, ".bashrc"), "user bashrc\n");
        File.Delete(Path.Join(Home, ".profile"));
        // Image v2 changes both, and one the user never touched, and adds a file and a directory.
        Write(Image, ".bashrc", "v2 bashrc\n");
        Write(Image, ".profile", "v2 profile\n");
        Write(Image, ".config/tool.conf", "v2 conf\n");
        Write(Image, "new.txt", "new in v2\n");
        Write(Image, "newdir/inner.txt", "inner\n");

        var upgrade = Seed("v2", marked: true);

        Assert.Equal(StepOutcome.Ok, upgrade.Outcome);
        Assert.Contains("the image changed (version:v1 -> version:v2): 2 added, 1 updated, 1 of your changes kept", upgrade.Summary);
        Assert.Contains("1 you deleted left deleted", upgrade.Summary);
        Assert.Equal("user bashrc\n", File.ReadAllText(Path.Join(Home, ".bashrc")));
        Assert.Equal("v2 bashrc\n", File.ReadAllText(Path.Join(Home, ".bashrc.packet-new")));
        Assert.False(File.Exists(Path.Join(Home, ".profile")), "a file the user deleted must not come back");
        Assert.Equal("v2 conf\n", File.ReadAllText(Path.Join(Home, ".config/tool.conf")));
        Assert.Equal("unchanged\n", File.ReadAllText(Path.Join(Home, "notes.txt")));
        Assert.Equal("new in v2\n", File.ReadAllText(Path.Join(Home, "new.txt")));
        Assert.Equal("inner\n", File.ReadAllText(Path.Join(Home, "newdir/inner.txt")));
        Assert.Empty(Directory.GetFileSystemEntries(Home, "*.packet-tmp*", SearchOption.AllDirectories));

        var again = Seed("v2", marked: true);

        Assert.Equal(StepOutcome.Skipped, again.Outcome);
        Assert.Contains("the image's home is unchanged", again.Summary);
    }

    [Fact]
    public void A_change_the_home_already_has_is_not_a_conflict()
    {
        Write(Image, ".vimrc", "v1\n");
        Seed("v1");
        File.WriteAllText(Path.Join(Home, ".vimrc"), "v2\n");
        Write(Image, ".vimrc", "v2\n");

        var upgrade = Seed("v2", marked: true);

        Assert.Contains("0 added, 0 updated, 0 of your changes kept", upgrade.Summary);
        Assert.False(File.Exists(Path.Join(Home, ".vimrc.packet-new")));
    }

    [Fact]
    public void Without_a_version_the_image_is_told_apart_by_a_fingerprint_of_its_first_levels()
    {
        Write(Image, ".bashrc", "v1\n");
        Seed(imageVersion: string.Empty);
        Write(Image, ".bashrc", "v2 with a new size\n");

        var upgrade = Seed(imageVersion: string.Empty, marked: true);

        Assert.Contains("1 updated", upgrade.Summary);
        Assert.StartsWith("fingerprint:", File.ReadLines(Path.Join(Workspace, ".packet", WorkspaceLayout.ImageManifest)).First().Split(' ').Last());
    }

    [Fact]
    public void A_boot_with_an_unchanged_image_does_not_walk_the_home()
    {
        for (int a = 0; a < 10; a++)
        {
            for (int b = 0; b < 10; b++)
            {
                HomeFixture.Write(Image, $"d{a}/e{b}/file", "x");
            }
        }

        Seed(imageVersion: string.Empty);
        int directoriesRead = 0;
        var counting = new FaultyPosix((call, _) =>
        {
            if (call == "getdents")
            {
                Interlocked.Increment(ref directoriesRead);
            }

            return null;
        });

        var result = Seed(imageVersion: string.Empty, counting, marked: true);

        Assert.Equal(StepOutcome.Skipped, result.Outcome);
        Assert.True(directoriesRead <= 25, $"{directoriesRead} directory reads for 111 directories: a boot with nothing to do must not walk the home");
    }

    [Fact]
    public void A_workspace_seeded_before_manifests_adopts_the_current_image_as_its_baseline()
    {
        Write(Image, ".bashrc", "image\n");
        HomeFixture.Write(Home, ".packet-init", string.Empty);
        HomeFixture.Write(Home, ".bashrc", "legacy copy\n");

        var adopted = Seed("v7", marked: true);

        Assert.Contains("recorded the image's home as the baseline", adopted.Summary);
        Assert.Equal("legacy copy\n", File.ReadAllText(Path.Join(Home, ".bashrc")));
        Assert.Equal("version:v7", ImageUpgrade.RecordedIdentity(DirectoryHandle.Open(new FaultyPosix(), Path.Join(Workspace, ".packet")), new FaultyPosix()));
    }

    [Fact]
    public void The_upgrade_baseline_lists_the_home_through_a_descriptor_of_its_own_while_the_seed_copies_it()
    {
        // A directory descriptor's position is shared by whoever reads it: two threads listing the
        // home through one descriptor each miss what the other read (seen: 2,054 of 4,002 entries
        // copied, and the home marked). A number closed by one is reused by the next open: each open counts apart.
        for (int i = 0; i < 2000; i++)
        {
            HomeFixture.Write(Image, $"entry-with-a-fairly-long-name-{i:D5}.txt", "x");
        }

        var posix = new FaultyPosix();

        Assert.Equal(StepOutcome.Ok, Seed("v1", posix).Outcome);

        Assert.All(posix.Listings.GroupBy(l => (l.Fd, l.Open)), listed => Assert.Single(listed.Select(l => l.Thread).Distinct()));
        Assert.Equal(2000, Directory.GetFiles(Home).Count(f => Path.GetFileName(f).StartsWith("entry-", StringComparison.Ordinal)));
        Assert.Equal(2000, File.ReadAllLines(Path.Join(Workspace, ".packet", WorkspaceLayout.ImageManifest)).Count(l => l.Contains("entry-", StringComparison.Ordinal)));
    }

    [Fact]
    public void Seed_dry_run_and_run_come_from_the_same_decision_for_a_first_seed()
    {
        Write(Image, ".bashrc", "v1 bashrc\n");
        Write(Image, ".config/tool.conf", "v1 conf\n");
        HomeFixture.Link(Image, ".bashrc", "bashrc-link");
        var (dryRun, planned, run, seeded) = SeedTwice("v1");

        using (seeded.Lock)
        {
            var entries = System.Text.RegularExpressions.Regex.Match(dryRun.Summary, @"^would copy (\d+ entries) \(");
            Assert.True(entries.Success, dryRun.Summary);
            Assert.Contains($"from {Image} into {Home}", dryRun.Summary);
            Assert.StartsWith($"copied {entries.Groups[1].Value}, ", run.Summary);
            Assert.Equal(HomeStatus.WillBeSeeded, planned.Status);
            Assert.Equal(HomeStatus.Copied, seeded.Status);
            Assert.Equal("v1 conf\n", File.ReadAllText(Path.Join(Home, ".config/tool.conf")));
        }
    }

    [Fact]
    public void Seed_dry_run_and_run_come_from_the_same_decision_for_an_image_upgrade()
    {
        Write(Image, ".bashrc", "v1 bashrc\n");
        Write(Image, ".profile", "v1 profile\n");
        Assert.Equal(StepOutcome.Ok, Seed("v1").Outcome);
        File.WriteAllText(Path.Join(Home, ".bashrc"), "user bashrc\n");
        Write(Image, ".bashrc", "v2 bashrc\n");
        Write(Image, ".profile", "v2 profile\n");
        Write(Image, "new.txt", "new in v2\n");

        var (dryRun, _, run, seeded) = SeedTwice("v2");

        using (seeded.Lock)
        {
            Assert.StartsWith("the image changed (version:v1 -> version:v2): would bring it in: 1 added, 1 updated, 1 of your changes kept", dryRun.Summary);
            Assert.Equal(dryRun.Summary.Replace("would bring it in: ", string.Empty, StringComparison.Ordinal), run.Summary);
            Assert.Equal("new in v2\n", File.ReadAllText(Path.Join(Home, "new.txt")));
        }
    }

    private (StepResult DryRun, HomeState Planned, StepResult Run, HomeState Seeded) SeedTwice(string imageVersion)
    {
        var options = new BootOptions { Workspace = Workspace, Home = Image, TerminationLog = _dir["termination-log"], ImageVersion = imageVersion };
        var changes = new ChangeLog();
        var recording = new RecordingPosix(changes);
        var step = new SeedHomeStep(recording, NullLogger.Instance, new CopyOptions { PreserveOwnership = Platform.IsRoot }, TimeSpan.FromMinutes(1), TimeProvider.System);
        using var workspace = DirectoryHandle.Open(recording, Workspace);
        return Steps.DryRunThenRun(step, () => workspace, options, _dir.Path, recorded: changes);
    }
}
