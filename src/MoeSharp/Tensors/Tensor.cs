using System.Runtime.InteropServices;

namespace MoeSharp.Tensors;

/// <summary>
/// A dense, row-major tensor: a dtype, a shape and storage — a typed, pinned array in host memory, or a
/// <see cref="DeviceBuffer"/> of a compute backend. Not a general tensor library: only what MoE needs (rows of a
/// 2-D matrix, counts, ids, expert weight stacks).
/// </summary>
/// <remarks>
/// Host storage is an array of the dtype's CLR type (<see cref="float"/>, <see cref="BFloat16"/>, <see cref="int"/>,
/// <see cref="long"/>); arrays the tensor allocates itself are pinned, so collectives can hand their address to other
/// ranks without copying, and <see cref="AsMemory{T}"/> works for asynchronous exchanges; their element 0 lies on a
/// 64-byte boundary, as PyTorch's CPU tensors do (a few elements into the array: <c>AlignedStorage</c>). A tensor
/// wrapping a caller's array (<see cref="FromArray{T}"/>) shares it as it is, and <see cref="FromMemory{T}"/> shares
/// any slice of one (the tensor then starts at an element offset into the array and never reads or writes outside the
/// slice); caller arrays need not be pinned, since the collectives pin what they hand to other ranks for the length of
/// the exchange. Native memory is not tensor storage. Device storage is reached only through
/// <see cref="DeviceBuffer"/>: span and array accessors throw for a device tensor (copy it with <see cref="ToHost"/>).
/// <para>
/// A tensor rented from a <see cref="TensorPool"/> goes back to it on <see cref="Dispose"/> (<c>using var</c>); for
/// every other tensor <see cref="Dispose"/> does nothing. A pool made with <c>poisonReturned</c> (or every pool when
/// the environment variable <c>MOESHARP_POOL_POISON</c> is <c>1</c>) fills returned storage with NaN (integers with
/// their minimum value) and makes every later access to the returned tensor, or a view of it, throw.
/// </para>
/// </remarks>
public sealed class Tensor : IDisposable
{
    /// <summary>A host array of the dtype's CLR type, or a <see cref="DeviceBuffer"/>.</summary>
    private readonly object _storage;
    private readonly int[] _shape;

    /// <summary>Elements in use: the product of the shape. The storage may be longer (a pooled array).</summary>
    private readonly int _count;

    /// <summary>
    /// Index of element 0 in the host array: where its 64-byte boundary falls in storage the tensor allocated
    /// (<see cref="AlignedStorage"/>), the start of a caller's slice (<see cref="FromMemory{T}"/>), 0 for a caller's
    /// whole array and for device tensors.
    /// </summary>
    private readonly int _offset;

    /// <summary>Whether the host array is a caller's, wrapped from a slice past its first element (never pooled).
    /// </summary>
    private readonly bool _callerSlice;

    /// <summary>The pool lease of a rented tensor, or null.</summary>
    private readonly StorageLease? _lease;

    /// <summary>
    /// The lease's generation when this tensor was rented: a different one means the storage went back.
    /// </summary>
    private readonly int _generation;

    private Tensor(
        DType dtype,
        int[] shape,
        object storage,
        int count,
        StorageLease? lease = null,
        int generation = 0,
        int offset = 0,
        bool callerSlice = false
    )
    {
        DType = dtype;
        _shape = shape;
        _storage = storage;
        _count = count;
        _lease = lease;
        _generation = generation;
        _offset = offset;
        _callerSlice = callerSlice;
    }

    /// <summary>The pool lease of a rented tensor (null otherwise).</summary>
    internal StorageLease? Lease => _lease;

    /// <summary>True when this tensor came from a pool and its storage has gone back since.</summary>
    internal bool IsReturned => _lease is not null && _lease.Generation != _generation;

    /// <summary>
    /// Hands a tensor rented from a <see cref="TensorPool"/> back to it (as <see cref="TensorPool.Return"/>); does
    /// nothing for other tensors, or when the storage already went back.
    /// </summary>
    public void Dispose()
    {
        if (_lease is not null && !IsReturned)
            _lease.Pool.Return(this);
    }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>True when the storage is host memory (spans work); false for a device tensor.</summary>
    public bool IsOnHost => _storage is Array;

    /// <summary>Where the storage is: <c>host</c>, or the device buffer's device name.</summary>
    public string Device => _storage is DeviceBuffer buffer ? buffer.DeviceName : "host";

    /// <summary>The device storage of a device tensor; null on the host.</summary>
    public DeviceBuffer? DeviceBuffer => _storage as DeviceBuffer;

    /// <summary>
    /// A device tensor of <paramref name="shape"/> over <paramref name="buffer"/>, which holds at least its bytes.
    /// </summary>
    public static Tensor OnDevice(DeviceBuffer buffer, DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        int count = CheckedElementCount(shape);
        if (buffer.LengthInBytes < (long)count * dtype.SizeOf())
        {
            throw new ArgumentException(
                $"a buffer of {buffer.LengthInBytes} bytes cannot hold {dtype} [{string.Join(", ", shape)}]",
                nameof(buffer)
            );
        }
        return new Tensor(dtype, (int[])shape.Clone(), buffer, count);
    }

    /// <summary>A host copy of this tensor (the tensor itself when it is already on the host).</summary>
    public Tensor ToHost()
    {
        if (IsOnHost)
            return this;
        var host = Uninitialized(DType, _shape);
        ((DeviceBuffer)_storage).CopyToHost(0, host.AsBytes());
        return host;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Total number of elements.</summary>
    public int ElementCount => _count;

    /// <summary>Size of dimension 0 (rows); 1 for a scalar.</summary>
    public int Rows => _shape.Length == 0 ? 1 : _shape[0];

    /// <summary>Elements per row: the product of every dimension after the first.</summary>
    public int RowLength
    {
        get
        {
            int n = 1;
            for (int i = 1; i < _shape.Length; i++)
                n *= _shape[i];
            return n;
        }
    }

    /// <summary>Bytes of storage.</summary>
    public long ByteCount => (long)_count * DType.SizeOf();

    /// <summary>Size of dimension <paramref name="dim"/>.</summary>
    public int Dim(int dim) => _shape[dim];

    /// <summary>A copy of the shape.</summary>
    public int[] ShapeArray() => (int[])_shape.Clone();

    /// <summary>A new zero-filled tensor.</summary>
    public static Tensor Zeros(DType dtype, params int[] shape)
    {
        int count = CheckedElementCount(shape);
        (Array storage, int offset) = AlignedStorage.Allocate(dtype, count, zeroed: true);
        return new Tensor(dtype, (int[])shape.Clone(), storage, count, offset: offset);
    }

    /// <summary>
    /// A new tensor whose contents are unspecified (fast: no zeroing). Write every element before reading.
    /// </summary>
    public static Tensor Uninitialized(DType dtype, params int[] shape)
    {
        int count = CheckedElementCount(shape);
        (Array storage, int offset) = AlignedStorage.Allocate(dtype, count, zeroed: false);
        return new Tensor(dtype, (int[])shape.Clone(), storage, count, offset: offset);
    }

    /// <summary>
    /// Wraps the caller's memory as a tensor without copying: reads and writes go straight to it, and only to the
    /// memory's elements (the rest of a longer array is never touched). The memory may be any slice of a managed
    /// array: a whole array, <c>array.AsMemory(offset, n)</c>, a pinned array from
    /// <c>GC.AllocateArray(n, pinned: true)</c>, an <c>ArrayPool</c> array or a slice of one.
    /// </summary>
    /// <remarks>
    /// The caller must keep the array alive and leave the slice alone (no writes from elsewhere) while the tensor, or
    /// anything computed lazily from it, is in use; returning an <c>ArrayPool</c> array while the tensor lives is a use
    /// after free. The array need not be pinned: the in-process and MPI collectives pin the spans and memory they hand
    /// to other ranks or to MPI for the length of the exchange (<c>fixed</c>, <see cref="Memory{T}.Pin"/>), and device
    /// uploads copy from a span.
    /// <para>
    /// Native memory (a <see cref="System.Buffers.MemoryManager{T}"/> over unmanaged memory, such as a pinned native
    /// buffer) is refused: the host kernels index managed arrays from parallel loops, and a second storage kind there
    /// would need raw pointers whose lifetime the tensor cannot guarantee. Copy such memory with
    /// <see cref="FromArray{T}"/> (<c>Tensor.FromArray(memory.ToArray(), shape)</c>).
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentException">
    /// The shape's element count differs from the memory's length, or the memory is not backed by a managed array
    /// (native memory from a <see cref="System.Buffers.MemoryManager{T}"/>).
    /// </exception>
    public static Tensor FromMemory<T>(Memory<T> memory, params int[] shape)
        where T : unmanaged
    {
        DType dtype = DTypeOf<T>();
        int count = CheckedElementCount(shape);
        if (count != memory.Length)
        {
            throw new ArgumentException(
                $"shape [{string.Join(", ", shape)}] holds {count} elements but the memory has {memory.Length}",
                nameof(shape)
            );
        }
        if (!MemoryMarshal.TryGetArray((ReadOnlyMemory<T>)memory, out ArraySegment<T> segment) || segment.Array is null)
        {
            throw new ArgumentException(
                "FromMemory wraps slices of managed arrays; this memory is not backed by an array (native memory from a "
                    + "MemoryManager<T>): copy it with Tensor.FromArray(memory.ToArray(), ...)",
                nameof(memory)
            );
        }
        return new Tensor(
            dtype,
            (int[])shape.Clone(),
            segment.Array,
            count,
            offset: segment.Offset,
            callerSlice: segment.Offset != 0
        );
    }

    /// <summary>Wraps an array (shared, not copied) as a tensor of the given shape.</summary>
    /// <exception cref="ArgumentException">The shape's element count differs from the array's length.</exception>
    public static Tensor FromArray<T>(T[] data, params int[] shape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        DType dtype = DTypeOf<T>();
        int count = CheckedElementCount(shape);
        if (count != data.Length)
        {
            throw new ArgumentException(
                $"shape [{string.Join(", ", shape)}] holds {count} elements but the array has {data.Length}",
                nameof(shape)
            );
        }
        return new Tensor(dtype, (int[])shape.Clone(), data, count);
    }

    /// <summary>The dtype whose CLR element type is <typeparamref name="T"/>.</summary>
    public static DType DTypeOf<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            return DType.Float32;
        if (typeof(T) == typeof(BFloat16))
            return DType.BFloat16;
        if (typeof(T) == typeof(int))
            return DType.Int32;
        if (typeof(T) == typeof(long))
            return DType.Int64;
        throw new NotSupportedException($"no tensor dtype stores {typeof(T).Name}");
    }

    /// <summary>The storage as a span of <typeparamref name="T"/>, which must match <see cref="DType"/>.</summary>
    /// <exception cref="InvalidOperationException">The element type does not match.</exception>
    public Span<T> AsSpan<T>()
        where T : unmanaged => Typed<T>().AsSpan(_offset, _count);

    /// <summary>The storage as memory of <typeparamref name="T"/> (for asynchronous exchanges).</summary>
    public Memory<T> AsMemory<T>()
        where T : unmanaged => new(Typed<T>(), _offset, _count);

    /// <summary>
    /// The backing array and the index of element 0 in it, for kernels that capture the array in parallel loops (spans
    /// cannot be captured). Element <c>i</c> is <c>Array[Offset + i]</c>; the array may be longer on both sides
    /// (pooled storage, a caller's slice): index only <c>Offset</c> up to <c>Offset + ElementCount</c>.
    /// </summary>
    internal (T[] Array, int Offset) Data<T>()
        where T : unmanaged => (Typed<T>(), _offset);

    /// <summary>
    /// The backing array, whatever its element type, and the index of element 0 in it (for <see cref="TensorPool"/>);
    /// never a caller's slice past its array's first element (its array is the caller's: it never goes into a pool).
    /// </summary>
    internal (Array Array, int Offset) Storage =>
        _callerSlice
            ? throw new InvalidOperationException(
                $"tensor {DType} {ShapeString} is a slice at element {_offset} of a caller's array: it cannot go into a pool"
            )
            : (_storage as Array ?? throw OnDeviceError("its host array"), _offset);

    /// <summary>A tensor over <paramref name="storage"/> from <paramref name="offset"/>, tied to a pool lease at its
    /// current generation.</summary>
    internal static Tensor OverStorage(DType dtype, int[] shape, Array storage, int offset, StorageLease lease)
    {
        Tensor plain = OverStorage(dtype, shape, storage, offset);
        return new Tensor(dtype, plain._shape, storage, plain._count, lease, lease.Generation, offset);
    }

    /// <summary>
    /// A tensor of <paramref name="shape"/> over the elements of <paramref name="storage"/> from
    /// <paramref name="offset"/>, of which there are at least as many.
    /// </summary>
    internal static Tensor OverStorage(DType dtype, int[] shape, Array storage, int offset)
    {
        int count = CheckedElementCount(shape);
        if (offset < 0 || storage.Length - offset < count)
            throw new ArgumentException(
                $"storage of {storage.Length} elements from element {offset} is shorter than shape [{string.Join(", ", shape)}]",
                nameof(storage)
            );
        return new Tensor(dtype, (int[])shape.Clone(), storage, count, offset: offset);
    }

    /// <summary>
    /// Allocates pinned storage of at least <paramref name="count"/> elements of <paramref name="dtype"/> past the
    /// returned offset, element 0 on a 64-byte boundary (<see cref="AlignedStorage"/>).
    /// </summary>
    internal static (Array Array, int Offset) AllocateStorage(DType dtype, int count) =>
        AlignedStorage.Allocate(dtype, count, zeroed: false);

    /// <summary>Row <paramref name="row"/> of a tensor seen as <c>[Rows, RowLength]</c>.</summary>
    public Span<T> Row<T>(int row)
        where T : unmanaged
    {
        int len = RowLength;
        return Typed<T>().AsSpan(_offset + row * len, len);
    }

    /// <summary>The raw bytes of the storage (little-endian, as every supported machine is).</summary>
    public Span<byte> AsBytes() =>
        DType switch
        {
            DType.Float32 => MemoryMarshal.AsBytes(AsSpan<float>()),
            DType.BFloat16 => MemoryMarshal.AsBytes(AsSpan<BFloat16>()),
            DType.Int32 => MemoryMarshal.AsBytes(AsSpan<int>()),
            DType.Int64 => MemoryMarshal.AsBytes(AsSpan<long>()),
            _ => throw new InvalidOperationException($"unknown dtype {DType}"),
        };

    /// <summary>A view of the same storage with another shape of equal element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        int count = CheckedElementCount(shape);
        if (count != ElementCount)
        {
            throw new ArgumentException(
                $"cannot reshape [{string.Join(", ", _shape)}] ({ElementCount} elements) to [{string.Join(", ", shape)}] ({count})",
                nameof(shape)
            );
        }
        return new Tensor(DType, (int[])shape.Clone(), _storage, count, _lease, _generation, _offset, _callerSlice);
    }

    /// <summary>A deep copy.</summary>
    public Tensor Clone()
    {
        var copy = Uninitialized(DType, _shape);
        AsBytes().CopyTo(copy.AsBytes());
        return copy;
    }

    /// <summary>Converts to float32 (exact from bfloat16 and from integers within 2^24).</summary>
    public Tensor ToFloat32()
    {
        if (DType == DType.Float32)
            return Clone();
        var result = Uninitialized(DType.Float32, _shape);
        Span<float> dst = result.AsSpan<float>();
        switch (DType)
        {
            case DType.BFloat16:
                ReadOnlySpan<BFloat16> b = AsSpan<BFloat16>();
                for (int i = 0; i < b.Length; i++)
                    dst[i] = b[i].ToSingle();
                break;
            case DType.Int32:
                ReadOnlySpan<int> i32 = AsSpan<int>();
                for (int i = 0; i < i32.Length; i++)
                    dst[i] = i32[i];
                break;
            case DType.Int64:
                ReadOnlySpan<long> i64 = AsSpan<long>();
                for (int i = 0; i < i64.Length; i++)
                    dst[i] = i64[i];
                break;
        }
        return result;
    }

    /// <summary>Converts float32 storage to bfloat16 (round to nearest even).</summary>
    /// <exception cref="InvalidOperationException">The tensor is not float32 or bfloat16.</exception>
    public Tensor ToBFloat16()
    {
        if (DType == DType.BFloat16)
            return Clone();
        if (DType != DType.Float32)
            throw new InvalidOperationException($"cannot convert {DType} to bfloat16");
        var result = Uninitialized(DType.BFloat16, _shape);
        ReadOnlySpan<float> src = AsSpan<float>();
        Span<BFloat16> dst = result.AsSpan<BFloat16>();
        for (int i = 0; i < src.Length; i++)
            dst[i] = BFloat16.FromSingle(src[i]);
        return result;
    }

    /// <summary>
    /// Same dtype, same shape and the same bytes (so NaNs compare by payload and -0 differs from +0).
    /// </summary>
    public bool BitwiseEquals(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return DType == other.DType && Shape.SequenceEqual(other.Shape) && AsBytes().SequenceEqual(other.AsBytes());
    }

    /// <summary>Shape as text, e.g. <c>[7, 3]</c>.</summary>
    public string ShapeString => "[" + string.Join(", ", _shape) + "]";

    /// <inheritdoc />
    public override string ToString() => $"Tensor({DType}, {ShapeString})";

    private T[] Typed<T>()
        where T : unmanaged
    {
        if (_lease is { Poisons: true } && IsReturned)
        {
            throw new ObjectDisposedException(
                ToString(),
                $"tensor {DType} {ShapeString} was returned to its pool and may now be another tensor's storage (use after return)"
            );
        }
        if (_storage is T[] typed)
            return typed;
        if (_storage is DeviceBuffer)
            throw OnDeviceError("a span");
        throw new InvalidOperationException($"tensor of dtype {DType} cannot be read as {typeof(T).Name}");
    }

    private InvalidOperationException OnDeviceError(string what) =>
        new($"tensor {DType} {ShapeString} lives on {Device}: {what} needs host memory (copy it with ToHost())");

    /// <summary>
    /// The number of elements of <paramref name="shape"/>, checked before anything is allocated for it: every
    /// dimension non-negative and the product at most <see cref="Array.MaxLength"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative dimension, or too many elements.</exception>
    internal static int CheckedElementCount(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(shape),
                    shape[i],
                    $"dimension {i} of [{string.Join(", ", shape)}] is negative"
                );
            }
            count *= shape[i];
            if (count > Array.MaxLength)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(shape),
                    $"shape [{string.Join(", ", shape)}] has more than {Array.MaxLength} elements"
                );
            }
        }
        return (int)count;
    }
}
