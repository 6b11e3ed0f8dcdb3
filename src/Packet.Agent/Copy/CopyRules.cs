using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>What the copy leaves out on purpose.</summary>
public enum LeftOut
{
    /// <summary>Copied.</summary>
    Nothing,

    /// <summary>A socket: a dead ssh-agent's or Jupyter's; nothing listens once its process is gone.</summary>
    Socket,

    /// <summary>A character or block device node: the container's, not the user's.</summary>
    Device,
}

/// <summary>What the copy leaves out on purpose, in one place (the scan, the copy and the image manifest all ask here).</summary>
public static class CopyRules
{
    /// <summary>From a file type in st_mode.</summary>
    public static LeftOut LeftOutByType(FilePermissions mode) => (mode & FilePermissions.S_IFMT) switch
    {
        FilePermissions.S_IFSOCK => LeftOut.Socket,
        FilePermissions.S_IFCHR or FilePermissions.S_IFBLK => LeftOut.Device,
        _ => LeftOut.Nothing,
    };

    /// <summary>From the type readdir gave (DT_UNKNOWN is decided later, by lstat).</summary>
    public static LeftOut LeftOutByType(byte direntType) => direntType switch
    {
        DirectoryReader.DT_SOCK => LeftOut.Socket,
        DirectoryReader.DT_CHR or DirectoryReader.DT_BLK => LeftOut.Device,
        _ => LeftOut.Nothing,
    };

    /// <summary>Whether an entry of this st_mode is left out.</summary>
    public static bool Skipped(FilePermissions mode) => LeftOutByType(mode) != LeftOut.Nothing;
}
