using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>A boot report kept in the container's runtime directory when the volume cannot take it, on a real file system.</summary>
public sealed class BootReportAsideTests : IDisposable
{
    private readonly TempDirectory _dir = new("report-aside");

    public void Dispose() => _dir.Dispose();

    private static BootReport Report(string workspace, int minute, string? keptAside = "the workspace was not usable (/workspace is not writable)") =>
        new("packet-agent", "1.0", null, new DateTimeOffset(2026, 12, 5, 9, minute, 0, TimeSpan.Zero), 0.01, 0, BootEnding.Warnings, [new StepReport("guard", StepOutcome.Warning, 0, "not writable")], null, [], ["guard: not writable"], workspace, keptAside);

    [Fact]
    public void A_report_goes_into_a_private_directory_made_for_it_and_is_read_back_whole()
    {
        string runtime = Path.Join(_dir.Path, "packet-agent");
        var aside = new BootReportAside(new FaultyPosix());

        Assert.Null(aside.Write(runtime, Report("/workspace", 1)));
        var read = aside.Newest(runtime, ["/workspace"]);

        Assert.Equal(Path.Join(runtime, "last-boot.json"), read?.Path);
        Assert.Equal(Report("/workspace", 1).KeptAside, read!.Report.KeptAside);
        Assert.Equal(["guard: not writable"], read.Report.Warnings);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(read.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(runtime));
    }

    [Fact]
    public void A_report_kept_for_another_workspace_is_not_this_ones()
    {
        string runtime = Path.Join(_dir.Path, "packet-agent");
        var aside = new BootReportAside(new FaultyPosix());
        Assert.Null(aside.Write(runtime, Report("/mnt/other", 1)));

        Assert.Null(aside.Newest(runtime, ["/workspace", "/mnt/volume"]));
        Assert.NotNull(aside.Newest(runtime, ["/workspace", "/mnt/other"]));
    }

    [Fact]
    public void A_directory_that_is_a_link_or_writable_by_others_is_not_written_into()
    {
        string elsewhere = _dir.Create("elsewhere");
        string planted = Path.Join(_dir.Path, "planted");
        File.CreateSymbolicLink(planted, elsewhere);
        string shared = _dir.Create("shared");
        Assert.Equal(0, Syscall.chmod(shared, FilePermissions.ACCESSPERMS));
        var aside = new BootReportAside(new FaultyPosix());

        string? throughLink = aside.Write(planted, Report("/workspace", 1));
        string? intoShared = aside.Write(shared, Report("/workspace", 1));

        Assert.Contains("planted", throughLink);
        Assert.Empty(Directory.GetFiles(elsewhere));
        Assert.Equal($"the runtime directory {shared} is not safe to use: {shared} is writable by everyone (mode 0777)", intoShared);
        Assert.Empty(Directory.GetFiles(shared));
    }

    [Fact]
    public void A_file_that_is_not_a_report_is_passed_over()
    {
        string runtime = _dir.Create("packet-agent");
        File.WriteAllText(Path.Join(runtime, "last-boot.json"), "{\"agent\": \"packet-agent\"}");

        Assert.Null(new BootReportAside(new FaultyPosix()).Newest(runtime, ["/workspace"]));
    }
}
