// Asio's, Asio SSL's and Beast's own implementation, compiled once for the
// whole program (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION
// are defined for sluice_net and everything that links it).

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
