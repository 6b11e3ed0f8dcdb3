using Mono.Unix.Native;

namespace Packet.Agent.Copy;

/// <summary>
/// A directory being copied: its source and destination descriptors, held open while anything
/// inside it is still being copied, then closed once the directory gets its final mode and times.
/// </summary>
/// <remarks>
/// <see cref="_pending"/> counts what is outstanding inside: the walker listing it, each queued
/// entry, each subdirectory not yet finished. Whoever brings it to zero finishes the directory
/// (after its children, so writing them cannot disturb its times) and releases its parent.
/// </remarks>
internal sealed class DirectoryNode
{
    private int _pending = 1;

    public DirectoryNode(DirectoryNode? parent, string name, int sourceFd, int destinationFd, int existingFd, in Stat source, bool isNew)
    {
        Parent = parent;
        Name = name;
        SourceFd = sourceFd;
        DestinationFd = destinationFd;
        ExistingFd = existingFd;
        Source = source;
        IsNew = isNew;
        RelativePath = parent is null ? string.Empty : Join(parent.RelativePath, name);
    }

    public DirectoryNode? Parent { get; }

    public string Name { get; }

    public int SourceFd { get; }

    public int DestinationFd { get; }

    /// <summary>The same directory in a home that already exists (merge), or -1: entries there are kept, not copied.</summary>
    public int ExistingFd { get; }

    public Stat Source { get; }

    /// <summary>False for a directory that already exists in the home: it only carries new entries and keeps its own metadata.</summary>
    public bool IsNew { get; }

    /// <summary>The path below the copied tree's root, for logs and hard links ("" for the root).</summary>
    public string RelativePath { get; }

    public static string Join(string directory, string name) => directory.Length == 0 ? name : directory + "/" + name;

    public void AddPending() => Interlocked.Increment(ref _pending);

    /// <summary>Drops one outstanding item; true when it was the last and the directory is now complete.</summary>
    public bool Release() => Interlocked.Decrement(ref _pending) == 0;
}
