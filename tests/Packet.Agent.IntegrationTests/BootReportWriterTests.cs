using System.Text.Json;
using Packet.Agent.Boot;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The boot report and the warnings banner written into a real workspace, with the last three kept.</summary>
public sealed class BootReportWriterTests : IDisposable
{
    private readonly TempDirectory _dir = new("report");

    public void Dispose() => _dir.Dispose();

    private string StatePath(string name) => Path.Join(_dir.Path, WorkspaceLayout.State, name);

    private static BootReport Report(string imageVersion, BootEnding outcome = BootEnding.Ok, params string[] warnings) =>
        new("packet-agent", "1.0", imageVersion, new DateTimeOffset(2026, 12, 3, 14, 5, 59, TimeSpan.Zero), 0.01, outcome == BootEnding.Failed ? 1 : 0, outcome, [], null, [], warnings);

    private string? Write(BootReport report, FaultyPosix? posix = null)
    {
        posix ??= new FaultyPosix();
        using var workspace = DirectoryHandle.Open(posix, _dir.Path);
        return new BootReportWriter(posix, _dir["run"]).Write(workspace, report);
    }

    private string ImageVersionIn(string name) =>
        JsonDocument.Parse(File.ReadAllBytes(StatePath(name))).RootElement.GetProperty("image_version").GetString()!;

    [Fact]
    public void A_report_is_written_readable_by_all_without_a_flush_and_an_ok_boot_leaves_no_banner()
    {
        var posix = new FaultyPosix();

        Assert.Null(Write(Report("v1"), posix));

        Assert.Equal("v1", ImageVersionIn(WorkspaceLayout.Report));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(StatePath(WorkspaceLayout.Report)));
        Assert.False(File.Exists(StatePath(WorkspaceLayout.ReportBanner)));
        Assert.Equal(0, posix.FSyncCalls);
    }

    [Fact]
    public void The_last_three_reports_before_this_one_are_kept_oldest_last()
    {
        foreach (string version in new[] { "v1", "v2", "v3", "v4", "v5" })
        {
            Assert.Null(Write(Report(version)));
        }

        Assert.Equal(
            ("v5", "v4", "v3", "v2"),
            (ImageVersionIn(WorkspaceLayout.Report), ImageVersionIn(WorkspaceLayout.PreviousReport(1)), ImageVersionIn(WorkspaceLayout.PreviousReport(2)), ImageVersionIn(WorkspaceLayout.PreviousReport(3))));
        Assert.Equal(4, Directory.GetFiles(Path.Join(_dir.Path, WorkspaceLayout.State)).Length);
    }

    [Theory]
    [InlineData(BootEnding.Warnings, new[] { "one" }, "the last boot (2026-12-03 14:05Z) had 1 warning\n")]
    [InlineData(BootEnding.Warnings, new[] { "one", "two" }, "the last boot (2026-12-03 14:05Z) had 2 warnings\n")]
    [InlineData(BootEnding.Failed, new[] { "one" }, "the last boot (2026-12-03 14:05Z) failed\n")]
    public void A_boot_that_was_not_ok_leaves_a_banner_until_one_is(BootEnding outcome, string[] warnings, string banner)
    {
        Assert.Null(Write(Report("v1", outcome, warnings)));

        Assert.Equal(banner, File.ReadAllText(StatePath(WorkspaceLayout.ReportBanner)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(StatePath(WorkspaceLayout.ReportBanner)));

        Assert.Null(Write(Report("v2")));

        Assert.False(File.Exists(StatePath(WorkspaceLayout.ReportBanner)));
    }

    [Fact]
    public void A_workspace_where_the_state_folder_cannot_be_made_gets_no_report_and_says_why()
    {
        File.WriteAllText(Path.Join(_dir.Path, WorkspaceLayout.State), "a file where the folder goes\n");

        string? problem = Write(Report("v1"));

        Assert.NotNull(problem);
        Assert.StartsWith("could not write the boot report: ", problem);
    }
}
