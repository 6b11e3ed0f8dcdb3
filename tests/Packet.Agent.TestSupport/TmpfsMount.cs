namespace Packet.Agent.TestSupport;

/// <summary>
/// A private tmpfs mounted on a fresh directory (root only), unmounted on dispose. For tests that
/// make millions of entries: on tmpfs they cost memory, not minutes of journaled disk writes.
/// </summary>
public sealed class TmpfsMount : IDisposable
{
    public TmpfsMount(string size = "4g", string inodes = "4m")
    {
        Path = Directory.CreateTempSubdirectory("packet-tmpfs-").FullName;
        ChildProcess.MustSucceed("mount", "-t", "tmpfs", "-o", $"size={size},nr_inodes={inodes},mode=0755", "tmpfs", Path);
    }

    public string Path { get; }

    public string Create(string relative)
    {
        string full = System.IO.Path.Join(Path, relative);
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose()
    {
        // Lazy: a process still holding a file there must not keep the mount alive after the test.
        ChildProcess.Run("umount", ["-l", Path]);
        Directory.Delete(Path);
    }
}
