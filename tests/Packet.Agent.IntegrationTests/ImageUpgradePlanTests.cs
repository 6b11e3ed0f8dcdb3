using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The upgrade's plan and its application, entry by entry, on real trees: an image home, the
/// persisted home, and the state folder holding the manifest of the image last brought in.
/// </summary>
public sealed class ImageUpgradePlanTests : IDisposable
{
    private readonly TempDirectory _dir = new("upgrade-plan");
    private readonly List<string> _actions = [];

    public ImageUpgradePlanTests()
    {
        Image = _dir.Create("image");
        Home = _dir.Create("home");
        State = _dir.Create("state");
    }

    private string Image { get; }

    private string Home { get; }

    private string State { get; }

    public void Dispose() => _dir.Dispose();

    /// <summary>The same content in the image and in the home, as a seed leaves it.</summary>
    private void Both(string relative, string content)
    {
        HomeFixture.Write(Image, relative, content);
        HomeFixture.Write(Home, relative, content);
    }

    private ImageUpgrade Upgrade(IPosix? posix = null) => new(posix ?? new FaultyPosix(), new CopyOptions { PreserveOwnership = Platform.IsRoot }, _actions.Add);

    private void Baseline(string identity = "version:1")
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        using var image = DirectoryHandle.Open(new FaultyPosix(), Image);
        Upgrade().RecordBaseline(state, image, identity);
    }

    private UpgradePlan Plan()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        using var image = DirectoryHandle.Open(new FaultyPosix(), Image);
        using var home = DirectoryHandle.Open(new FaultyPosix(), Home);
        return Upgrade().Plan(state, image, home);
    }

    private (UpgradePlan Plan, UpgradeReport Report) Apply(IPosix? posix = null, Action? betweenPlanAndApply = null)
    {
        var plan = Plan();
        betweenPlanAndApply?.Invoke();
        using (var state = DirectoryHandle.Open(new FaultyPosix(), State))
        using (var image = DirectoryHandle.Open(new FaultyPosix(), Image))
        using (var home = DirectoryHandle.Open(new FaultyPosix(), Home))
        {
            var report = Upgrade(posix).Apply(plan, state, image, home, "version:2");
            Assert.Empty(Directory.GetFileSystemEntries(Home, "*.packet-tmp*", SearchOption.AllDirectories));
            Assert.Equal([State, Image, Home], OpenDescriptors.Under(_dir.Path));
            return (plan, report);
        }
    }

    private static string[] Described(UpgradePlan plan) => [.. plan.Actions.Select(action => action.Describe)];

    private string Read(string relative) => File.ReadAllText(Path.Join(Home, relative));

    private string? RecordedIdentity()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        return ImageUpgrade.RecordedIdentity(state, new FaultyPosix());
    }

    [Fact]
    public void An_entry_the_new_image_dropped_does_not_put_the_old_manifest_out_of_step()
    {
        Both("a", "a1\n");
        Both("b", "b1\n");
        Both("c", "c1\n");
        Both("d/x", "x1\n");
        Baseline();
        File.Delete(Path.Join(Image, "b"));
        File.Delete(Path.Join(Image, "d/x"));
        HomeFixture.Write(Image, "c", "c2, changed by the image\n");
        HomeFixture.Write(Image, "d/y", "y\n");

        var plan = Plan();

        Assert.Equal(["updated c (changed in the image, untouched by you)", "added d/y (new in the image)"], Described(plan));
        Assert.Equal((1, 1, 0, 0), (plan.Counts.Added, plan.Counts.Updated, plan.Counts.KeptChanged, plan.Counts.LeftDeleted));
    }

    [Fact]
    public void What_the_user_deleted_stays_deleted_a_file_or_a_directory()
    {
        Both("kept", "k\n");
        Both("gone-file", "g\n");
        Both("gone-dir/inner", "i\n");
        Baseline();
        File.Delete(Path.Join(Home, "gone-file"));
        Directory.Delete(Path.Join(Home, "gone-dir"), recursive: true);
        HomeFixture.Write(Image, "gone-file", "changed since\n");

        var (plan, report) = Apply();

        Assert.Empty(plan.Actions);
        Assert.Equal(2, plan.Counts.LeftDeleted);
        Assert.Equal("0 added, 0 updated, 0 of your changes kept (the image's version beside each as NAME.packet-new), 2 you deleted left deleted", report.Summary);
        Assert.False(report.Changed);
        Assert.False(Path.Exists(Path.Join(Home, "gone-file")));
        Assert.False(Path.Exists(Path.Join(Home, "gone-dir")));
    }

    [Fact]
    public void Where_the_home_holds_another_kind_of_entry_than_the_images_directory_nothing_is_done_and_no_link_followed()
    {
        Both("conf/a", "a\n");
        Both("tools/t", "t\n");
        Baseline();
        string outside = _dir.Create("outside");
        Directory.Delete(Path.Join(Home, "conf"), recursive: true);
        File.WriteAllText(Path.Join(Home, "conf"), "the user's file now\n");
        Directory.Delete(Path.Join(Home, "tools"), recursive: true);
        HomeFixture.Symlink(Home, outside, "tools");
        HomeFixture.Write(Image, "conf/b", "new\n");
        HomeFixture.Write(Image, "tools/u", "new\n");

        var (plan, _) = Apply();

        Assert.Empty(plan.Actions);
        Assert.Equal("the user's file now\n", Read("conf"));
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    [Fact]
    public void Each_kind_of_action_is_carried_out_counted_and_logged()
    {
        Both("update-me", "u1\n");
        Both("keep-mine", "k1\n");
        Both("same", "s\n");
        Baseline();
        File.WriteAllText(Path.Join(Home, "keep-mine"), "the user's\n");
        HomeFixture.Write(Image, "keep-mine", "k2\n");
        HomeFixture.Write(Image, "update-me", "u2\n");
        HomeFixture.Write(Image, "new-file", "n\n");
        HomeFixture.Write(Image, "new-dir/deep/file", "d\n");
        HomeFixture.Symlink(Image, "new-file", "new-link");

        var (plan, report) = Apply();

        Assert.Equal(
            [
                "kept your keep-mine; the image's version is beside it as keep-mine.packet-new",
                "added new-dir/ (new in the image)",
                "added new-file (new in the image)",
                "added new-link (new in the image)",
                "updated update-me (changed in the image, untouched by you)",
            ],
            _actions);
        Assert.Equal(_actions, Described(plan));
        Assert.Equal((3, 1, 1, 0, 0, true), (report.Added, report.Updated, report.KeptChanged, report.LeftDeleted, report.Failed, report.Changed));
        Assert.Equal(("the user's\n", "k2\n", "u2\n", "n\n", "d\n"), (Read("keep-mine"), Read("keep-mine.packet-new"), Read("update-me"), Read("new-file"), Read("new-dir/deep/file")));
        Assert.Equal("new-file", new FileInfo(Path.Join(Home, "new-link")).LinkTarget);
        Assert.Equal("version:2", RecordedIdentity());
        Assert.Empty(Plan().Actions);
    }

    [Fact]
    public void A_stale_packet_new_from_an_earlier_upgrade_is_replaced_by_the_images_latest()
    {
        Both("conf", "c1\n");
        Baseline();
        File.WriteAllText(Path.Join(Home, "conf"), "the user's\n");
        File.WriteAllText(Path.Join(Home, "conf.packet-new"), "c1.5, from an earlier upgrade\n");
        HomeFixture.Write(Image, "conf", "c2\n");

        var (_, report) = Apply();

        Assert.Equal((1, 0), (report.KeptChanged, report.Failed));
        Assert.Equal(("the user's\n", "c2\n"), (Read("conf"), Read("conf.packet-new")));
    }

    [Fact]
    public void What_the_user_created_between_the_plan_and_its_application_is_never_replaced()
    {
        Both("base", "b\n");
        Baseline();
        HomeFixture.Write(Image, "new-file", "image's\n");
        HomeFixture.Write(Image, "new-dir/inner", "image's\n");

        var (_, report) = Apply(betweenPlanAndApply: () =>
        {
            HomeFixture.Write(Home, "new-file", "the user's\n");
            HomeFixture.Write(Home, "new-dir/mine", "the user's\n");
        });

        Assert.Equal((0, 2), (report.Added, report.Failed));
        Assert.Equal(", 2 failed", report.Summary[report.Summary.LastIndexOf(',')..]);
        Assert.Equal("the user's\n", Read("new-file"));
        Assert.Equal(["mine"], Directory.GetFileSystemEntries(Path.Join(Home, "new-dir")).Select(Path.GetFileName));
        Assert.Contains(_actions, line => line.StartsWith("could not bring in new-file: ", StringComparison.Ordinal));
        Assert.Contains(_actions, line => line.StartsWith("could not bring in new-dir: ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_failed_action_is_counted_and_the_others_still_happen()
    {
        Both("dir/a", "a1\n");
        Both("b", "b1\n");
        Baseline();
        HomeFixture.Write(Image, "dir/a", "a2\n");
        HomeFixture.Write(Image, "b", "b2\n");

        var (_, report) = Apply(new FaultyPosix((call, name) => call == "openat" && name == "dir" ? Errno.EACCES : null));

        Assert.Equal((1, 1), (report.Updated, report.Failed));
        Assert.Equal(("a1\n", "b2\n"), (Read("dir/a"), Read("b")));
        Assert.Equal(["updated b (changed in the image, untouched by you)", "could not bring in dir/a: Permission denied (EACCES)"], _actions);
    }

    [Fact]
    public void An_image_file_that_cannot_be_read_is_not_brought_in()
    {
        Both("base", "b\n");
        Baseline();
        HomeFixture.Write(Image, "secret", "unreadable\n");

        var (_, report) = Apply(new FaultyPosix((call, name) => call == "openat" && name == "secret" ? Errno.EACCES : null));

        Assert.Equal((0, 1), (report.Added, report.Failed));
        Assert.Equal("could not bring in secret: it could not be read", _actions.Single());
        Assert.False(File.Exists(Path.Join(Home, "secret")));
    }

    [Fact]
    public void Sockets_in_the_image_are_neither_recorded_nor_brought_in()
    {
        Both("base", "b\n");
        HomeFixture.DeadSocket(Path.Join(Image, "agent.sock"));
        Baseline();

        Assert.DoesNotContain("agent.sock", File.ReadAllText(Path.Join(State, WorkspaceLayout.ImageManifest)));
        Assert.Empty(Plan().Actions);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("# packet-agent image manifest v1 version:1")]
    [InlineData("not a manifest\nf\t1\t0.000000000\t-\ta\n")]
    public void Without_a_readable_manifest_header_no_image_is_recorded(string? content)
    {
        if (content is not null)
        {
            File.WriteAllText(Path.Join(State, WorkspaceLayout.ImageManifest), content);
        }

        Assert.Null(RecordedIdentity());
    }

    [Fact]
    public void A_manifest_that_is_a_symlink_is_not_followed()
    {
        File.WriteAllText(_dir["elsewhere"], "# packet-agent image manifest v1 version:planted\n");
        HomeFixture.Symlink(State, _dir["elsewhere"], WorkspaceLayout.ImageManifest);

        Assert.Null(RecordedIdentity());
    }

    [Fact]
    public void A_baseline_stopped_while_it_is_written_leaves_the_recorded_one_in_place_and_no_temporary_file()
    {
        Both("a", "a\n");
        Baseline("version:1");
        using var stop = new CancellationTokenSource();
        stop.Cancel();

        using (var state = DirectoryHandle.Open(new FaultyPosix(), State))
        using (var image = DirectoryHandle.Open(new FaultyPosix(), Image))
        {
            Assert.Throws<OperationCanceledException>(() => Upgrade().PrepareBaseline(state, image, "version:2", stop.Token));
        }

        Assert.Equal("version:1", RecordedIdentity());
        Assert.Equal([WorkspaceLayout.ImageManifest], Directory.GetFileSystemEntries(State).Select(Path.GetFileName));
    }

    [Fact]
    public void A_baseline_prepared_and_not_committed_is_thrown_away()
    {
        Both("a", "a\n");
        Baseline("version:1");

        using (var state = DirectoryHandle.Open(new FaultyPosix(), State))
        using (var image = DirectoryHandle.Open(new FaultyPosix(), Image))
        using (Upgrade().PrepareBaseline(state, image, "version:2", CancellationToken.None))
        {
            Assert.Equal(2, Directory.GetFileSystemEntries(State).Length);
        }

        Assert.Equal("version:1", RecordedIdentity());
        Assert.Equal([WorkspaceLayout.ImageManifest], Directory.GetFileSystemEntries(State).Select(Path.GetFileName));
    }
}
