using System.Globalization;
using System.Text.Json;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>A boot report read from the container's runtime directory, and where.</summary>
public sealed record AsideReport(BootReport Report, string Path);

/// <summary>
/// A boot's report kept outside the volume, in the container's runtime directory
/// (<see cref="RuntimeDirectory"/>), when the volume cannot take it (an agent that may not write
/// there, no volume, a full one): <c>status</c> in the same container then tells what that boot did
/// instead of "has not booted". Each user reads and writes only its own runtime directory, and only
/// when it is its own alone: another account's (or one another account could have made) is never
/// read, so no one can hand status a report, or a FIFO that would hang it.
/// </summary>
public sealed class BootReportAside(IPosix posix)
{
    public const string FileName = "last-boot.json";
    private const int MaxReportBytes = 1 << 20;

    /// <summary>Root's runtime directory is <c>/run/packet-agent</c>; another user's, <c>/tmp/packet-agent-UID</c> (a container's /run is root's).</summary>
    public static string DefaultDirectory(uint uid) =>
        uid == 0 ? "/run/packet-agent" : Path.Join("/tmp", "packet-agent-" + uid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Writes the report into <paramref name="directory"/> (made when missing); null, or why it could not.</summary>
    public string? Write(string directory, BootReport report)
    {
        if (RuntimeDirectory.Ensure(posix, directory) is { } refused)
        {
            return refused;
        }

        try
        {
            using var own = DirectoryHandle.Open(posix, directory);
            own.ReplaceFile(FileName, BootReportJson.Write(report), posix.EffectiveUserId, posix.EffectiveGroupId, FileModes.Readable, durable: false);
            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    /// <summary>The report kept in <paramref name="directory"/> (this user's runtime directory) for one of <paramref name="workspaces"/>; null when there is none.</summary>
    public AsideReport? Newest(string directory, IReadOnlyCollection<string> workspaces)
    {
        if (RuntimeDirectory.Refusal(posix, directory) is not null)
        {
            return null;
        }

        try
        {
            using var own = DirectoryHandle.Open(posix, directory);
            return own.ReadFile(FileName, MaxReportBytes, out _) is { } bytes
                && JsonSerializer.Deserialize(bytes, BootJson.Default.BootReport) is { Steps: not null, Warnings: not null, Gpus: not null } report
                && report.Workspace is { } workspace && workspaces.Contains(workspace)
                    ? new AsideReport(report, own.PathOf(FileName))
                    : null;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }
}
