using System.Buffers.Binary;

namespace Packet.Agent.Posix;

/// <summary>One directory entry: its name and the type the file system reported (DT_*, 0 when unknown).</summary>
public readonly record struct DirectoryEntry(string Name, byte Type);

/// <summary>
/// Reads a directory through getdents64 into a caller-owned buffer: no DIR* per open directory
/// (glibc's is 32 KiB) and no allocation per entry beyond the name.
/// </summary>
public sealed class DirectoryReader(IPosix posix, int bufferSize = 64 * 1024)
{
    public const byte DT_UNKNOWN = 0;
    public const byte DT_FIFO = 1;
    public const byte DT_CHR = 2;
    public const byte DT_DIR = 4;
    public const byte DT_BLK = 6;
    public const byte DT_REG = 8;
    public const byte DT_LNK = 10;
    public const byte DT_SOCK = 12;

    // linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] (NUL-terminated).
    private const int NameOffset = 19;
    private const int RecordLengthOffset = 16;
    private const int TypeOffset = 18;

    private readonly byte[] _buffer = new byte[bufferSize];

    /// <summary>Calls <paramref name="onEntry"/> for each entry except "." and "..", from the start; returns 0 or the negated errno.</summary>
    public int ReadAll(int dirFd, Action<DirectoryEntry> onEntry)
    {
        // getdents continues from the descriptor's position: a directory read before starts over.
        long rewound = posix.LSeek(dirFd, 0, 0);
        if (rewound < 0)
        {
            return (int)rewound;
        }

        while (true)
        {
            int length = posix.GetDents(dirFd, _buffer);
            if (length <= 0)
            {
                return length;
            }

            int offset = 0;
            while (offset < length)
            {
                var record = _buffer.AsSpan(offset);
                int recordLength = BinaryPrimitives.ReadUInt16LittleEndian(record[RecordLengthOffset..]);
                byte type = record[TypeOffset];
                var nameBytes = record[NameOffset..recordLength];
                nameBytes = nameBytes[..nameBytes.IndexOf((byte)0)];
                offset += recordLength;
                if (IsDotOrDotDot(nameBytes))
                {
                    continue;
                }

                onEntry(new DirectoryEntry(NativeName.FromBytes(nameBytes), type));
            }
        }
    }

    private static bool IsDotOrDotDot(ReadOnlySpan<byte> name) =>
        (name.Length == 1 && name[0] == '.') || (name.Length == 2 && name[0] == '.' && name[1] == '.');
}
