using Microsoft.Extensions.Logging.Abstractions;
using Packet.Agent.Boot;
using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Steps;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The seed step's decisions before any copy: a home that cannot be read, a marked workspace, a live home that is the persisted one.</summary>
public sealed class SeedHomeStepTests : IDisposable
{
    private readonly TempDirectory _dir = new("seed-step");

    public SeedHomeStepTests()
    {
        Workspace = _dir.Create("workspace");
        Image = _dir.Create("image-home");
        HomeFixture.Write(Image, ".bashrc", "image\n");
    }

    private string Workspace { get; }

    private string Image { get; }

    private string Persisted => Path.Join(Workspace, "home");

    public void Dispose() => _dir.Dispose();

    private readonly ChangeLog _changes = new();

    private SeedHomeStep Step() =>
        new(new RecordingPosix(_changes), NullLogger.Instance, new CopyOptions { PreserveOwnership = Platform.IsRoot }, TimeSpan.FromMinutes(1), TimeProvider.System);

    private BootOptions Options(string home, string version = "1", bool upgrade = true) =>
        new() { Workspace = Workspace, Home = home, TerminationLog = _dir["termination-log"], Upgrade = upgrade, ImageVersion = version };

    private (StepResult Result, HomeStatus Status) Seed(string home, bool upgrade = true)
    {
        using var workspace = DirectoryHandle.Open(new RecordingPosix(_changes), Workspace);
        var (result, state) = Steps.Run(Step(), workspace, Options(home, upgrade: upgrade), recorded: _changes);
        state.Lock?.Dispose();
        return (result, state.Status);
    }

    /// <summary>Decides an upgrade to image version 2, lets another agent act before it is carried out, then carries it out.</summary>
    private StepResult UpgradeWith(Action meanwhile, Action? imageChange = null)
    {
        Assert.Equal(StepOutcome.Ok, Seed(Image).Result.Outcome);
        Mark();
        HomeFixture.Write(Image, ".bashrc", "image v2\n");
        imageChange?.Invoke();
        using var workspace = DirectoryHandle.Open(new RecordingPosix(_changes), Workspace);
        var step = Step();
        var settings = new BootSettings(Options(Image, version: "2"), new StopRequest(), Steps.Account(Options(Image, version: "2")));
        using var plan = step.Decide(workspace, settings);
        meanwhile();
        _changes.Take();
        var result = step.Apply(plan, settings).Result;
        Steps.AssertInsidePlan([.. plan.Changes, .. result.Replanned?.Changes ?? []], _changes);
        return result;
    }

    private void RecordBaseline(string identity)
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), Path.Join(Workspace, WorkspaceLayout.State));
        using var image = DirectoryHandle.Open(new FaultyPosix(), Image);
        new ImageUpgrade(new FaultyPosix(), new CopyOptions(), _ => { }).RecordBaseline(state, image, identity);
    }

    private void Mark() => HomeFixture.Write(Persisted, ".packet-init", string.Empty);

    [Fact]
    public void A_home_that_cannot_be_read_leaves_an_unmarked_workspace_unseeded_and_says_why()
    {
        string missing = _dir["no-such-home"];

        var (result, status) = Seed(missing);

        Assert.Equal((StepOutcome.Warning, HomeStatus.NotSeeded), (result.Outcome, status));
        Assert.Equal($"cannot read the home to seed from: open directory {missing}: No such file or directory (ENOENT); the home is not seeded", result.Summary);
        Assert.False(Directory.Exists(Persisted));
    }

    [Fact]
    public void A_home_that_cannot_be_read_beside_a_marked_workspace_leaves_it_seeded_unchecked()
    {
        Mark();
        string missing = _dir["no-such-home"];

        var (result, status) = Seed(missing);

        Assert.Equal((StepOutcome.Skipped, HomeStatus.Seeded), (result.Outcome, status));
        Assert.Equal($"already seeded (marker present); image changes not checked: open directory {missing}: No such file or directory (ENOENT)", result.Summary);
    }

    [Fact]
    public void A_marked_workspace_without_upgrades_is_left_as_it_is()
    {
        Mark();

        var (result, status) = Seed(Image, upgrade: false);

        Assert.Equal((StepOutcome.Skipped, HomeStatus.Seeded, "already seeded (marker present)"), (result.Outcome, status, result.Summary));
        Assert.False(File.Exists(Path.Join(Persisted, ".bashrc")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_live_home_that_is_the_persisted_one_has_nothing_to_copy(bool throughALink)
    {
        Directory.CreateDirectory(Persisted);
        string home = Persisted;
        if (throughALink)
        {
            HomeFixture.Symlink(_dir.Path, Persisted, "home-link");
            home = _dir["home-link"];
        }

        var (result, status) = Seed(home);

        Assert.Equal((StepOutcome.Ok, HomeStatus.Copied, $"{home} is the persisted home itself; nothing to copy"), (result.Outcome, status, result.Summary));
        Assert.Empty(Directory.GetFileSystemEntries(Persisted));
    }

    [Fact]
    public void A_marked_persisted_home_that_is_the_live_one_is_not_upgraded_from_itself()
    {
        Mark();

        var (result, status) = Seed(Persisted);

        Assert.Equal((StepOutcome.Skipped, HomeStatus.Seeded, "already seeded (marker present)"), (result.Outcome, status, result.Summary));
    }

    [Fact]
    public void An_upgrade_another_agent_brought_in_meanwhile_is_not_brought_in_twice()
    {
        var result = UpgradeWith(() => RecordBaseline("version:2"));

        Assert.Equal((StepOutcome.Skipped, "already seeded; another agent brought in the image's changes meanwhile"), (result.Outcome, result.Summary));
        Assert.Equal("image\n", File.ReadAllText(Path.Join(Persisted, ".bashrc")));
    }

    [Fact]
    public void An_upgrade_is_planned_again_when_another_agent_changed_the_baseline_meanwhile()
    {
        // The other agent recorded today's image as its baseline: against it, nothing changed.
        var result = UpgradeWith(() => RecordBaseline("version:1.5"));

        Assert.Equal(StepOutcome.Ok, result.Outcome);
        Assert.StartsWith("the image changed (version:1 -> version:2): 0 added, 0 updated, 0 of your changes kept", result.Summary);
        Assert.StartsWith("another agent changed the image manifest while this one waited for the lock; planned again: 0 added, 0 updated, 0 of your changes kept", result.Replanned?.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(result.Replanned!.Changes, change => change.Kind == ChangeKind.CopyTree);
    }

    [Fact]
    public void An_upgrade_with_an_action_that_failed_is_a_warning()
    {
        var result = UpgradeWith(
            meanwhile: () => HomeFixture.Write(Persisted, "new.conf", "the user's\n"),
            imageChange: () => HomeFixture.Write(Image, "new.conf", "image's\n"));

        Assert.Equal(StepOutcome.Warning, result.Outcome);
        Assert.EndsWith(", 1 failed", result.Summary);
        Assert.Equal("the user's\n", File.ReadAllText(Path.Join(Persisted, "new.conf")));
    }
}
