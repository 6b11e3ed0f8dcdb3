using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// Moves a regular file's bytes: copy_file_range first (in-kernel, and a reflink where the file
/// system can), sendfile where the kernel refuses it across file systems (EXDEV between overlayfs
/// and the volume), read/write last. What works is learned once per pair of devices, so a refused
/// method costs one failed call per boot, not one per file. Holes stay holes (SEEK_DATA/SEEK_HOLE).
/// With <paramref name="writeBehind"/>, the writeback of each large chunk is started as soon as it
/// is written, so the disk works while the copy goes on and the final flush has little left to do.
/// </summary>
internal sealed class FileDataCopier(IPosix posix, bool writeBehind, CancellationToken stop)
{
    // Small enough that a stop request is seen within a fraction of a second on any disk, and that
    // write-behind starts early in a large file.
    private const long MaxChunk = 8L << 20;

    // Below this a chunk is a small file's whole data: one sync_file_range per small file cost more
    // than it saved (measured: 1.09x the time with every file, 0.975x with chunks of 1 MiB and more).
    private const long WriteBehindMinimum = 1L << 20;
    private const int BufferSize = 1 << 20;
    private const long SparseThreshold = 64 * 1024;

    [ThreadStatic]
    private static byte[]? t_buffer;

    private readonly ConcurrentDictionary<(ulong Source, ulong Destination), Method> _methods = new();

    private enum Method
    {
        CopyFileRange,
        SendFile,
        ReadWrite,
    }

    /// <summary>
    /// Copies the file's first <c>st_size</c> bytes and returns how many were there to copy (fewer
    /// when the file shrank meanwhile). Throws <see cref="SourceReadException"/> when reading failed
    /// and <see cref="DestinationWriteException"/> when writing did.
    /// </summary>
    public long Copy(int sourceFd, int destinationFd, in Stat source, ulong destinationDevice, string path)
    {
        long size = source.st_size;
        if (size == 0)
        {
            return 0;
        }

        var devices = (source.st_dev, destinationDevice);
        if (size >= SparseThreshold && source.st_blocks * 512 < size)
        {
            return CopySparse(sourceFd, destinationFd, size, devices, path);
        }

        return CopyRange(sourceFd, destinationFd, 0, size, devices, path);
    }

    private long CopySparse(int sourceFd, int destinationFd, long size, (ulong, ulong) devices, string path)
    {
        long offset = 0;
        while (offset < size)
        {
            long dataStart = posix.LSeek(sourceFd, offset, LibC.SEEK_DATA);
            if (dataStart < 0)
            {
                var errno = PosixException.ErrnoOf(dataStart);
                if (errno == Errno.ENXIO)
                {
                    break; // only a hole remains
                }

                if (offset == 0 && ErrnoMeaning.HoleSeekUnsupported(errno))
                {
                    return CopyRange(sourceFd, destinationFd, 0, size, devices, path);
                }

                throw new SourceReadException(errno);
            }

            long dataEnd = posix.LSeek(sourceFd, dataStart, LibC.SEEK_HOLE);
            if (dataEnd < 0)
            {
                throw new SourceReadException(PosixException.ErrnoOf(dataEnd));
            }

            dataEnd = Math.Min(dataEnd, size);
            long segment = CopyRange(sourceFd, destinationFd, dataStart, dataEnd - dataStart, devices, path);
            if (segment < dataEnd - dataStart)
            {
                size = dataStart + segment; // the file shrank under us
                break;
            }

            offset = dataEnd;
        }

        // The trailing hole, if any, exists only as the file's length.
        int truncated = posix.FTruncate(destinationFd, size);
        if (truncated < 0 && ErrnoMeaning.VolumeRefuses(PosixException.ErrnoOf(truncated)) && posix.FStat(destinationFd, out var written) >= 0 && written.st_size <= size)
        {
            // fusefat cannot extend a file by ftruncate: one zero byte written at the end extends it, the
            // gap reading as zeros (allocated on such a volume: it holds no holes, as with cp -a there).
            // A file whose data reached its end has nothing to extend.
            truncated = written.st_size == size ? 0 : (int)Math.Min(posix.PWrite(destinationFd, [0], size - 1), 0);
        }

        if (truncated < 0)
        {
            throw new DestinationWriteException("extend", path, PosixException.ErrnoOf(truncated));
        }

        return size;
    }

    private long CopyRange(int sourceFd, int destinationFd, long offset, long length, (ulong, ulong) devices, string path)
    {
        var method = _methods.GetValueOrDefault(devices, Method.CopyFileRange);
        long done = 0;
        while (done < length)
        {
            stop.ThrowIfCancellationRequested();
            long chunk = Math.Min(length - done, MaxChunk);
            long result = method switch
            {
                Method.CopyFileRange => posix.CopyFileRange(sourceFd, offset + done, destinationFd, offset + done, chunk),
                Method.SendFile => SendFileAt(sourceFd, destinationFd, offset + done, chunk),
                _ => ReadWrite(sourceFd, destinationFd, offset + done, chunk, path),
            };

            if (result > 0)
            {
                if (writeBehind && result >= WriteBehindMinimum)
                {
                    // Advisory: it starts the writeback and does not wait. Its failures (a file system
                    // without it) are not this copy's; what counts is the flush that ends the copy.
                    _ = posix.StartWriteback(destinationFd, offset + done, result);
                }

                done += result;
                continue;
            }

            if (result == 0)
            {
                break; // end of file before st_size: it shrank
            }

            var errno = PosixException.ErrnoOf(result);
            if (method != Method.ReadWrite && ErrnoMeaning.InKernelCopyRefused(errno))
            {
                // Refused for this pair of devices (or this file system), not for this file: learn it.
                method = method == Method.CopyFileRange ? Method.SendFile : Method.ReadWrite;
                _methods[devices] = method;
                continue;
            }

            if (method != Method.ReadWrite && errno == Errno.EIO)
            {
                // In-kernel copies do not say which side failed; read/write does.
                method = Method.ReadWrite;
                continue;
            }

            if (ErrnoMeaning.StopsTheCopy(errno))
            {
                throw new DestinationWriteException("write", path, errno);
            }

            throw new SourceReadException(errno);
        }

        return done;
    }

    private long SendFileAt(int sourceFd, int destinationFd, long offset, long length)
    {
        // sendfile writes at the output's position; sparse segments start past a hole.
        long positioned = posix.LSeek(destinationFd, offset, (int)SeekFlags.SEEK_SET);
        return positioned < 0 ? positioned : posix.SendFile(destinationFd, sourceFd, offset, length);
    }

    private long ReadWrite(int sourceFd, int destinationFd, long offset, long length, string path)
    {
        var buffer = t_buffer ??= new byte[BufferSize];
        int wanted = (int)Math.Min(length, buffer.Length);
        long read = posix.PRead(sourceFd, buffer.AsSpan(0, wanted), offset);
        if (read < 0)
        {
            throw new SourceReadException(PosixException.ErrnoOf(read));
        }

        long written = 0;
        while (written < read)
        {
            long result = posix.PWrite(destinationFd, buffer.AsSpan((int)written, (int)(read - written)), offset + written);
            if (result <= 0)
            {
                // A write that moves nothing would be retried forever: a FUSE volume can answer so.
                throw new DestinationWriteException("write", path, result < 0 ? PosixException.ErrnoOf(result) : Errno.EIO);
            }

            written += result;
        }

        return read;
    }
}
