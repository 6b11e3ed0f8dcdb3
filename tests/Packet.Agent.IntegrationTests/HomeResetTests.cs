using Packet.Agent.Operations;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary><c>reset-home</c>'s move aside on a real workspace: never a deletion, never under a seeding agent.</summary>
public sealed class HomeResetTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 9, 30, 5, TimeSpan.Zero);

    private readonly TempDirectory _dir = new("reset-home");

    public HomeResetTests()
    {
        Workspace = _dir.Create("workspace");
        Source = _dir.Create("image-home");
        HomeFixture.Write(Source, ".bashrc", "# image\n");
        HomeFixture.Write(Source, ".config/tool/settings", new string('x', 5000));
    }

    private string Workspace { get; }

    private string Source { get; }

    public void Dispose() => _dir.Dispose();

    private ResetOutcome Reset(string workspace, string source, bool dryRun = false)
    {
        var before = OpenDescriptors.Under(_dir.Path);
        var outcome = new HomeReset(new FaultyPosix(), new FixedClock(Now)).MoveAside(workspace, source, dryRun);
        Assert.Equal(before, OpenDescriptors.Under(_dir.Path));
        return outcome;
    }

    [Fact]
    public void The_home_is_moved_to_a_backup_named_by_the_time_and_nothing_is_deleted()
    {
        HomeFixture.Write(Workspace, "home/notes.txt", "mine\n");

        var outcome = Reset(Workspace, Source);

        string backup = Path.Join(Workspace, "home.bak-20261203T093005Z");
        Assert.Equal(new ResetOutcome(true, $"moved {Path.Join(Workspace, "home")} to {backup} (nothing was deleted)", backup), outcome);
        Assert.Equal("mine\n", File.ReadAllText(Path.Join(backup, "notes.txt")));
        Assert.False(Directory.Exists(Path.Join(Workspace, "home")));
    }

    [Fact]
    public void Backups_made_in_the_same_second_get_numbers_instead_of_replacing_each_other()
    {
        Directory.CreateDirectory(Path.Join(Workspace, "home.bak-20261203T093005Z"));
        Directory.CreateDirectory(Path.Join(Workspace, "home.bak-20261203T093005Z-2"));
        Directory.CreateDirectory(Path.Join(Workspace, "home"));

        var outcome = Reset(Workspace, Source);

        Assert.Equal(Path.Join(Workspace, "home.bak-20261203T093005Z-3"), outcome.MovedTo);
        Assert.True(Directory.Exists(Path.Join(Workspace, "home.bak-20261203T093005Z-3")));
    }

    [Fact]
    public void Without_a_home_there_is_nothing_to_move()
    {
        var outcome = Reset(Workspace, Source);

        Assert.Equal(new ResetOutcome(true, $"{Path.Join(Workspace, "home")} does not exist; nothing to move"), outcome);
        Assert.Empty(Directory.GetFileSystemEntries(Workspace));
    }

    [Fact]
    public void A_dry_run_says_what_would_move_and_how_much_would_be_seeded_and_changes_nothing()
    {
        Directory.CreateDirectory(Path.Join(Workspace, "home"));

        var outcome = Reset(Workspace, Source, dryRun: true);

        Assert.Equal(
            new ResetOutcome(true, $"would move {Path.Join(Workspace, "home")} to {Path.Join(Workspace, "home.bak-20261203T093005Z")}, then seed 4 entries (4.9 KiB) from {Source}"),
            outcome);
        Assert.Equal(["home"], Directory.GetFileSystemEntries(Workspace).Select(Path.GetFileName));
    }

    [Fact]
    public void A_dry_run_without_a_home_would_only_seed()
    {
        var outcome = Reset(Workspace, Source, dryRun: true);

        Assert.StartsWith("no home to move; would seed 4 entries", outcome.Message, StringComparison.Ordinal);
        Assert.True(outcome.Done);
        Assert.Empty(Directory.GetFileSystemEntries(Workspace));
    }

    [Fact]
    public void A_dry_run_does_not_count_a_workspace_that_lies_inside_the_home()
    {
        string workspace = _dir.Create("image-home/workspace");
        HomeFixture.Write(workspace, "big", new string('y', 100_000));

        var outcome = Reset(workspace, Source, dryRun: true);

        Assert.StartsWith("no home to move; would seed 4 entries (4.9 KiB)", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_agent_holding_the_lock_leaves_the_home_where_it_is()
    {
        Directory.CreateDirectory(Path.Join(Workspace, "home"));
        using var workspace = DirectoryHandle.Open(new FaultyPosix(), Workspace);
        using var state = workspace.CreateDirectory(WorkspaceLayout.State, FileModes.Directory);
        using var held = WorkspaceLock.Acquire(new FaultyPosix(), state, TimeProvider.System, TimeSpan.Zero, TimeSpan.FromDays(1), (_, _) => { }, CancellationToken.None);
        Assert.NotNull(held);

        var outcome = Reset(Workspace, Source);

        Assert.False(outcome.Done);
        Assert.StartsWith($"another agent holds {Path.Join(Workspace, ".packet/lock")} (", outcome.Message, StringComparison.Ordinal);
        Assert.EndsWith("): it may be seeding this home; try again once it has finished", outcome.Message, StringComparison.Ordinal);
        Assert.Null(outcome.MovedTo);
        Assert.True(Directory.Exists(Path.Join(Workspace, "home")));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
