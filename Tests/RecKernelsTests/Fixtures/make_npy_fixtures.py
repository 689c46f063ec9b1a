"""Writes the .npy fixtures NumPyTests reads. Run once with numpy; the outputs are committed."""
import numpy as np

a = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4
np.save('f4_3x4.npy', a)
np.save('f8_2x3.npy', np.array([[1.5, -2.25, 3.0], [0.1, 1e-3, -7.0]], dtype=np.float64))
np.save('f4_vector5.npy', np.array([1, 2, 3, 4, 5], dtype=np.float32))
np.save('f4_fortran.npy', np.asfortranarray(np.ones((3, 2), dtype=np.float32)))
np.save('i4_2x2.npy', np.array([[1, 2], [3, 4]], dtype=np.int32))
with open('f4_v2_2x2.npy', 'wb') as f:
    np.lib.format.write_array(f, np.array([[1, 2], [3, 4]], dtype=np.float32), version=(2, 0))
