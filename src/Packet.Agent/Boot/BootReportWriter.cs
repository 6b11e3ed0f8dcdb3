using System.Text;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>Where a boot's report goes; a fake in unit tests.</summary>
public interface IBootReportWriter
{
    /// <summary>Where a report the volume cannot take is kept: the container's runtime directory.</summary>
    string AsideDirectory { get; }

    /// <summary>Writes the report to the volume; returns why it could not, or null.</summary>
    string? Write(DirectoryHandle workspace, BootReport report);

    /// <summary>Keeps the report in <see cref="AsideDirectory"/>; returns why it could not, or null.</summary>
    string? WriteAside(BootReport report);
}

/// <summary>
/// Writes <c>last-boot.json</c> into the agent's own state folder (<c>/workspace/.packet</c> for
/// root, <c>/workspace/.packet/user-UID</c> otherwise; the previous ones kept as
/// <c>last-boot.1.json</c> ... <c>.3.json</c>) and the one-line banner file the shell block shows
/// when the boot had warnings. Replaced atomically but not fsync'ed: a report is for people, and
/// a boot with nothing to do must stay a few milliseconds.
/// </summary>
public sealed class BootReportWriter(IPosix posix, string asideDirectory) : IBootReportWriter
{

    public string AsideDirectory => asideDirectory;


    public string? WriteAside(BootReport report) => new BootReportAside(posix).Write(asideDirectory, report);

    public string? Write(DirectoryHandle workspace, BootReport report)
    {
        try
        {
            using var state = StateFolder.CreateOwn(posix, workspace);
            // Every rename goes to a free name: ext4 starts writing back a file renamed over another
            // (auto_da_alloc), a cost a boot with nothing to do should not pay on each report.
            posix.UnlinkAt(state.Fd, WorkspaceLayout.PreviousReport(WorkspaceLayout.PreviousReportsKept), isDirectory: false);
            for (int generation = WorkspaceLayout.PreviousReportsKept; generation >= 1; generation--)
            {
                string from = generation == 1 ? WorkspaceLayout.Report : WorkspaceLayout.PreviousReport(generation - 1);
                NoReplaceRename.Move(posix, state.Fd, from, state.Fd, WorkspaceLayout.PreviousReport(generation));
            }

            byte[] json = BootReportJson.Write(report);
            state.ReplaceFile(WorkspaceLayout.Report, json, posix.EffectiveUserId, posix.EffectiveGroupId, FileModes.Readable, durable: false);
            if (report.Outcome == BootEnding.Ok)
            {
                posix.UnlinkAt(state.Fd, WorkspaceLayout.ReportBanner, isDirectory: false);
            }
            else
            {
                string banner = $"the last boot ({report.StartedAt:yyyy-MM-dd HH:mm}Z) {(report.Outcome == BootEnding.Failed ? "failed" : $"had {report.Warnings.Count} warning{(report.Warnings.Count == 1 ? string.Empty : "s")}")}\n";
                state.ReplaceFile(WorkspaceLayout.ReportBanner, Encoding.UTF8.GetBytes(banner), posix.EffectiveUserId, posix.EffectiveGroupId, FileModes.Readable, durable: false);
            }

            return null;
        }
        catch (IOException e)
        {
            return $"could not write the boot report: {e.Message}";
        }
    }
}
