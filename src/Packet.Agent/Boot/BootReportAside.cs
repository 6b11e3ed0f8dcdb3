using System.Globalization;
using System.Text.Json;
using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>A boot report read from the container's runtime directory, and where.</summary>
public sealed record AsideReport(BootReport Report, string Path);

/// <summary>
/// A boot's report kept outside the volume, in the container's runtime directory, when the volume
/// cannot take it (an agent that may not write there, no volume, a full one): <c>status</c> in the
/// same container then tells what that boot did instead of "has not booted". Root's runtime
/// directory is <c>/run/packet-agent</c>; another user's is <c>/tmp/packet-agent-UID</c> (a
/// container's /run is root's), used only when that user owns it and no one else may write it.
/// </summary>
public sealed class BootReportAside(IPosix posix)
{
    public const string FileName = "last-boot.json";
    private const int MaxReportBytes = 1 << 20;
    private const string UserDirectoryPrefix = "packet-agent-";
    private const string UsersParent = "/tmp";

    public static string DefaultDirectory(uint uid) =>
        uid == 0 ? "/run/packet-agent" : Path.Join(UsersParent, UserDirectoryPrefix + uid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Writes the report into <paramref name="directory"/> (made when missing); null, or why it could not.</summary>
    public string? Write(string directory, BootReport report)
    {
        try
        {
            using var parent = DirectoryHandle.Open(posix, Path.GetDirectoryName(directory) ?? "/");
            using var own = parent.CreateDirectory(Path.GetFileName(directory), FileModes.Directory);
            PosixException.Check(posix.FStat(own.Fd, out var stat), "stat", own.Path);
            if (stat.st_uid != posix.EffectiveUserId || (stat.st_mode & (FilePermissions.S_IWGRP | FilePermissions.S_IWOTH)) != 0)
            {
                return $"{own.Path} belongs to uid {stat.st_uid} or is writable by others: not used";
            }

            own.ReplaceFile(FileName, BootReportJson.Write(report), posix.EffectiveUserId, posix.EffectiveGroupId, FileModes.Readable, durable: false);
            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// The newest report kept aside for one of <paramref name="workspaces"/>: in <paramref name="configured"/>
    /// (PACKET_RUNTIME_DIR), else in the defaults: root's, this user's, and (as root) every user's.
    /// </summary>
    public AsideReport? Newest(string? configured, IReadOnlyCollection<string> workspaces)
    {
        var directories = configured is not null ? [configured] : DefaultDirectories();
        return directories
            .Select(Read)
            .Where(found => found is not null && found.Report.Workspace is { } workspace && workspaces.Contains(workspace))
            .MaxBy(found => found!.Report.StartedAt);
    }

    private List<string> DefaultDirectories()
    {
        var directories = new List<string> { DefaultDirectory(0), DefaultDirectory(posix.EffectiveUserId) };
        if (posix.EffectiveUserId == 0)
        {
            try
            {
                directories.AddRange(Directory.EnumerateDirectories(UsersParent, UserDirectoryPrefix + "*").Where(OwnedByItsUser));
            }
            catch (IOException)
            {
                // No /tmp to look in: only root's directory then.
            }
        }

        return directories.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>A user's directory counts only when that user owns it: another user could make one in /tmp under any name.</summary>
    private bool OwnedByItsUser(string directory) =>
        uint.TryParse(Path.GetFileName(directory)[UserDirectoryPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
        && posix.LStatAt(FileModes.AtCurrentDirectory, directory, out var stat) >= 0 && (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR && stat.st_uid == uid;

    private static AsideReport? Read(string directory)
    {
        string path = Path.Join(directory, FileName);
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > MaxReportBytes || info.LinkTarget is not null)
            {
                return null;
            }

            return JsonSerializer.Deserialize(File.ReadAllBytes(path), BootJson.Default.BootReport) is { Steps: not null, Warnings: not null, Gpus: not null } report
                ? new AsideReport(report, path)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }
}
